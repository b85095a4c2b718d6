import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, JWK } from 'jose';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { launchBrowser } from '../support/browser';
import { identityEnv, PASSWORD } from '../support/identity';
import { http, startTestApp, TestApp } from '../support/test-app';
import { ReferenceUpstream, startListeningScript, writeUpstreamsFile } from './upstream-test-kit';

export const UPSTREAM_CLIENT_ID = 'secure-mcp-gateway-at-docs';
export const UPSTREAM_CLIENT_SECRET = 'upstream-client-secret-for-tests-0123456789abcdef';

type ProviderInstance = any; // oidc-provider ships no types

/**
 * An upstream's own authorization server: panva's oidc-provider (OpenID-certified) on loopback,
 * with the gateway pre-registered as a confidential client (redirect URI: the gateway's
 * /connect/callback). Authorization code + PKCE, resource indicators (RFC 8707) whose access
 * tokens are JWTs with the resource as audience (what the upstream verifies), refresh tokens
 * (rotated). Its sign-in is the library's development interaction: any login name is an account.
 * Every request to its token endpoint with grant_type=refresh_token is counted there.
 */
/**
 * The `docs` upstream entry of the user-oauth suites: the whoami server at `url`, listed with the
 * gateway's UPSTREAM_DOCS_LISTING token, each user's calls with their own token from this server
 * (client UPSTREAM_CLIENT_ID, secret from UPSTREAM_DOCS_CLIENT_SECRET).
 */
export function userOAuthDocsEntry(url: string) {
  return {
    name: 'docs',
    transport: 'http',
    url,
    headers: { Authorization: { fromEnv: 'UPSTREAM_DOCS_LISTING', prefix: 'Bearer ' } },
    category: 'system',
    permissions: ['tools:execute'],
    rateLimit: { requests: 10_000, window: '1m' },
    auth: { mode: 'user-oauth', clientId: UPSTREAM_CLIENT_ID, clientSecret: { fromEnv: 'UPSTREAM_DOCS_CLIENT_SECRET' }, scope: 'mcp' },
  };
}

/** A gateway with the user-oauth `docs` upstream (the whoami server behind this file's authorization server). */
export interface UserOAuthGateway {
  t: TestApp;
  as: UpstreamAuthorizationServer;
  upstream: ReferenceUpstream;
  db: DataSource;
  /** The gateway's public origin (its OAuth issuer). */
  issuer: string;
  close(): Promise<void>;
}

/**
 * Starts the authorization server, the whoami upstream behind it (`listingToken` is the gateway's
 * own credential, for its catalogue connection only) and a gateway (PostgreSQL) with `docs` as
 * `auth: user-oauth` plus the upstream entries `more` gives for the whoami server's URL; the authorization server then knows the
 * gateway's callback.
 */
export async function startUserOAuthGateway(
  listingToken: string,
  more: (upstreamUrl: string) => object[] = () => [],
): Promise<UserOAuthGateway> {
  const as = await UpstreamAuthorizationServer.listen();
  const upstream = await startListeningScript(join(__dirname, 'fixtures', 'whoami-upstream.cjs'), [
    listingToken,
    as.jwksUri,
    'self',
    as.issuer,
  ]);
  const file = writeUpstreamsFile(mkdtempSync(join(tmpdir(), 'smcp-user-oauth-')), [
    userOAuthDocsEntry(upstream.url),
    ...more(upstream.url),
  ]);
  const t = await startTestApp('postgres', {
    env: identityEnv({
      MCP_UPSTREAMS_FILE: file,
      UPSTREAM_DOCS_LISTING: listingToken,
      UPSTREAM_DOCS_CLIENT_SECRET: UPSTREAM_CLIENT_SECRET,
    }),
  });
  const issuer = (await http(t.baseUrl, 'GET', '/.well-known/openid-configuration')).body.issuer;
  await as.configure(`${issuer}/connect/callback`);
  return {
    t,
    as,
    upstream,
    db: t.app.get(DataSource),
    issuer,
    close: async () => {
      await t.close();
      upstream.child.kill('SIGTERM');
      await as.close();
    },
  };
}

export class UpstreamAuthorizationServer {
  /** Refresh requests that reached the token endpoint (whatever their outcome). */
  refreshRequests = 0;
  private provider: ProviderInstance | undefined;
  private readonly refreshTokens: ProviderInstance[] = [];
  private readonly issuedRefreshTokens: ProviderInstance[] = [];
  private readonly server: Server = createServer((req: IncomingMessage, res: ServerResponse) =>
    this.provider ? this.provider.callback()(req, res) : res.writeHead(503).end(),
  );
  private issuerUrl = '';

  get issuer(): string {
    return this.issuerUrl;
  }

  get jwksUri(): string {
    return `${this.issuer}/jwks`;
  }

  /** Listens (the issuer is known from then on); `configure` builds the provider once the gateway's callback is known. */
  static async listen(): Promise<UpstreamAuthorizationServer> {
    const as = new UpstreamAuthorizationServer();
    await new Promise<void>((resolve) => as.server.listen(0, '127.0.0.1', resolve));
    as.issuerUrl = `http://127.0.0.1:${(as.server.address() as AddressInfo).port}`;
    return as;
  }

  /** The refresh tokens of `accountId` this server would still honour (not revoked, rotated away or expired). */
  async usableRefreshTokens(accountId: string): Promise<number> {
    let usable = 0;
    for (const issued of this.issuedRefreshTokens) {
      if (issued.accountId !== accountId) continue;
      const found = await this.provider.RefreshToken.find(issued.jti);
      if (found && !found.consumed && !found.isExpired) usable += 1;
    }
    return usable;
  }

  /** Revokes every refresh token issued so far (the user revoked the gateway's access at the upstream). */
  async revokeRefreshTokens(): Promise<void> {
    for (const token of this.refreshTokens.splice(0)) await token.destroy();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  async configure(gatewayCallback: string, accessTokenTtl = 600): Promise<void> {
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const signing: JWK = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'upstream-as-1' };
    const { warn, info } = console;
    console.warn = console.info = () => undefined;
    try {
      const { Provider } = (await import('oidc-provider')) as any;
      const provider = new Provider(this.issuer, {
        clients: [
          {
            client_id: UPSTREAM_CLIENT_ID,
            client_secret: UPSTREAM_CLIENT_SECRET,
            redirect_uris: [gatewayCallback],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: 'client_secret_basic',
          },
        ],
        jwks: { keys: [signing] },
        // Cookies are per host, not per port: on loopback the gateway's own sign-in cookies (the library's
        // default names) must not be overwritten by this server's, as they would not be on another host.
        cookies: {
          keys: ['upstream-as-cookie-key-for-tests'],
          names: { session: '_upstream_as_session', interaction: '_upstream_as_interaction', resume: '_upstream_as_resume' },
        },
        pkce: { required: () => true },
        scopes: ['openid', 'offline_access', 'mcp'],
        features: {
          devInteractions: { enabled: true },
          revocation: { enabled: true },
          resourceIndicators: {
            enabled: true,
            defaultResource: async (_ctx: unknown, _client: unknown, oneOf?: string) => oneOf,
            useGrantedResource: async () => true,
            getResourceServerInfo: async (_ctx: unknown, indicator: string) => ({
              scope: 'mcp',
              audience: indicator,
              accessTokenTTL: accessTokenTtl,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'RS256' } },
            }),
          },
        },
        issueRefreshToken: async () => true,
        rotateRefreshToken: true,
        findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
      });
      provider.use(async (ctx: any, next: () => Promise<void>) => {
        await next();
        if (ctx.method === 'POST' && ctx.path === '/token' && ctx.oidc?.params?.grant_type === 'refresh_token') this.refreshRequests += 1;
      });
      provider.on('refresh_token.saved', (token: ProviderInstance) => {
        this.refreshTokens.push(token);
        this.issuedRefreshTokens.push(token);
      });
      this.provider = provider;
    } finally {
      Object.assign(console, { warn, info });
    }
  }
}

/**
 * Opens a gateway connect link in a fresh headless Chromium: the gateway's own sign-in page as
 * `email`, then the upstream's authorization server as `upstreamLogin` (sign-in and consent), until
 * the gateway's callback page; its heading and text.
 */
export async function connectInBrowser(input: {
  link: string;
  gateway: string;
  as: UpstreamAuthorizationServer;
  email: string;
  upstreamLogin: string;
}): Promise<{ title: string | null; text: string | null; url: string }> {
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage();
    await page.goto(input.link);
    await page.waitForURL((at) => at.href.startsWith(`${input.gateway}/oauth/interaction/`));
    await page.fill('input[name="email"]', input.email);
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForURL((at) => at.href.startsWith(input.as.issuer));
    await page.fill('input[name="login"]', input.upstreamLogin);
    await page.fill('input[name="password"]', 'any password the dev interaction accepts');
    // The upstream's sign-in, then its consent: each a form of the authorization server's.
    for (let step = 0; step < 3 && page.url().startsWith(input.as.issuer); step += 1) {
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    }
    await page.waitForURL((at) => at.href.startsWith(`${input.gateway}/connect/callback`));
    return { title: await page.textContent('h1'), text: await page.textContent('main'), url: page.url() };
  } finally {
    await browser.close();
  }
}
