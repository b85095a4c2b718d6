import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

/**
 * A minimal OpenID provider for the benchmark: its discovery document and JWKS on loopback, and
 * access tokens signed with its RS256 key — what the gateway fetches and verifies for an IdP token.
 * (The functional suites use a full provider, oidc-provider; a benchmark needs only the keys.)
 */
export interface BenchIdp {
  issuer: string;
  audience: string;
  /** The gateway's IDP_* settings for this provider (an admin group, tokens accepted directly). */
  env: Record<string, string>;
  token(sub: string, email: string): Promise<string>;
  close(): Promise<void>;
}

export async function startBenchIdp(): Promise<BenchIdp> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'bench-1', alg: 'RS256', use: 'sig' };
  let issuer = '';
  const server: Server = createServer((req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration'
        ? {
            issuer,
            authorization_endpoint: `${issuer}/authorize`,
            token_endpoint: `${issuer}/token`,
            jwks_uri: `${issuer}/jwks`,
            response_types_supported: ['code'],
            subject_types_supported: ['public'],
            id_token_signing_alg_values_supported: ['RS256'],
          }
        : req.url === '/jwks'
          ? { keys: [jwk] }
          : undefined;
    res.statusCode = body ? 200 : 404;
    res.setHeader('content-type', 'application/json');
    res.end(body ? JSON.stringify(body) : '{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const audience = 'api://bench-gateway';
  return {
    issuer,
    audience,
    env: {
      IDP_PROVIDERS: 'bench',
      IDP_BENCH_ISSUER: issuer,
      IDP_BENCH_ALLOW_HTTP: 'true',
      IDP_BENCH_AUDIENCES: audience,
      IDP_BENCH_ROLE_MAP: JSON.stringify({ 'gw-admins': 'admin' }),
    },
    token: (sub, email) =>
      new SignJWT({ email, email_verified: true, groups: ['gw-admins'], scope: 'openid mcp' })
        .setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'at+jwt' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime('2h')
        .sign(privateKey),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
