import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, exportJWK, generateKeyPair, JWK, jwtVerify } from 'jose';

export const EXCHANGE_CLIENT_ID = 'secure-mcp-gateway-exchange';
export const EXCHANGE_CLIENT_SECRET = 'exchange-client-secret-for-tests-0123456789abcdef';
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

type ProviderInstance = any; // oidc-provider ships no types

/** One exchange the IdP granted: whose subject token, for which audience. */
export interface Exchange {
  sub: string;
  audience: string;
}

/**
 * An enterprise IdP with RFC 8693 token exchange: panva's oidc-provider (OpenID-certified) on
 * loopback, with the token-exchange grant registered for the gateway's client. It trusts subject
 * tokens signed by the gateway's key (given after the gateway starts) with the expected issuer and
 * its token endpoint as audience, and issues JWT access tokens for the requested audience whose
 * subject is the subject token's. Every granted exchange is recorded.
 */
export class ExchangeIdp {
  readonly exchanges: Exchange[] = [];
  /** The subject_token_type of each granted exchange, in the order of `exchanges`. */
  readonly subjectTypes: string[] = [];
  private trusted: KeyObject | undefined;
  /** An issuer whose own access tokens are accepted as subject tokens (subject type access_token). */
  private trustedIdp: { issuer: string; keys: ReturnType<typeof createRemoteJWKSet> } | undefined;
  private provider: ProviderInstance | undefined;

  /** Answers with the provider once it is built (503 before). */
  private readonly server: Server = createServer((req: IncomingMessage, res: ServerResponse) =>
    this.provider ? this.provider.callback()(req, res) : res.writeHead(503).end(),
  );
  private issuerUrl = '';

  get issuer(): string {
    return this.issuerUrl;
  }

  get tokenEndpoint(): string {
    return `${this.issuer}/token`;
  }

  get jwksUri(): string {
    return `${this.issuer}/jwks`;
  }

  static async start(subjectIssuer: string): Promise<ExchangeIdp> {
    const idp = new ExchangeIdp();
    await new Promise<void>((resolve) => idp.server.listen(0, '127.0.0.1', resolve));
    idp.issuerUrl = `http://127.0.0.1:${(idp.server.address() as AddressInfo).port}`;
    await idp.build(subjectIssuer);
    return idp;
  }

  /** The gateway's public key (its OAUTH_SIGNING_KEY): subject tokens must be signed with it. */
  trust(key: KeyObject): void {
    this.trusted = key;
  }

  /** Accepts access tokens of `issuer` (checked against its JWKS) as subject tokens: the enterprise IdP's own tokens. */
  trustIdp(issuer: string, jwksUri: string): void {
    this.trustedIdp = { issuer, keys: createRemoteJWKSet(new URL(jwksUri)) };
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async build(subjectIssuer: string): Promise<void> {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const signing: JWK = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'exchange-idp-1' };
    const { warn, info } = console;
    console.warn = console.info = () => undefined;
    try {
      const { Provider, errors } = (await import('oidc-provider')) as any;
      const provider = new Provider(this.issuer, {
        clients: [
          {
            client_id: EXCHANGE_CLIENT_ID,
            client_secret: EXCHANGE_CLIENT_SECRET,
            redirect_uris: [],
            response_types: [],
            grant_types: [TOKEN_EXCHANGE],
            token_endpoint_auth_method: 'client_secret_basic',
          },
        ],
        jwks: { keys: [signing] },
        cookies: { keys: ['exchange-idp-cookie-key-for-tests'] },
        features: { devInteractions: { enabled: false } },
        ttl: { AccessToken: 600 },
      });
      provider.registerGrantType(
        TOKEN_EXCHANGE,
        async (ctx: any) => {
          const params = ctx.oidc.params;
          const type = params.subject_token_type;
          if (type !== JWT_TYPE && type !== ACCESS_TOKEN_TYPE)
            throw new errors.InvalidRequest('subject_token_type must be a JWT or an access token');
          if (!params.audience) throw new errors.InvalidTarget('audience is required');
          let sub: string;
          try {
            if (type === ACCESS_TOKEN_TYPE) {
              if (!this.trustedIdp) throw new Error('no IdP is trusted');
              // An access token of the enterprise IdP itself: its subject is the IdP's user.
              const { payload } = await jwtVerify(params.subject_token, this.trustedIdp.keys, { issuer: this.trustedIdp.issuer });
              sub = String(payload.sub);
            } else {
              if (!this.trusted) throw new Error('no subject issuer is trusted yet');
              const { payload } = await jwtVerify(params.subject_token, this.trusted, {
                issuer: subjectIssuer,
                audience: this.tokenEndpoint,
              });
              sub = String(payload.sub);
            }
          } catch {
            throw new errors.InvalidGrant('subject_token is not valid');
          }
          const token = new provider.AccessToken({
            accountId: sub,
            client: ctx.oidc.client,
            gty: 'token_exchange',
            scope: '',
            resourceServer: new provider.ResourceServer(params.audience, {
              audience: params.audience,
              accessTokenFormat: 'jwt',
              accessTokenTTL: 600,
              jwt: { sign: { alg: 'RS256' } },
            }),
          });
          const value = await token.save();
          this.exchanges.push({ sub, audience: params.audience });
          this.subjectTypes.push(type);
          ctx.body = { access_token: value, issued_token_type: ACCESS_TOKEN_TYPE, token_type: 'Bearer', expires_in: token.expiration };
        },
        ['subject_token', 'subject_token_type', 'audience', 'requested_token_type', 'resource', 'scope'],
      );
      this.provider = provider;
    } finally {
      Object.assign(console, { warn, info });
    }
  }
}
