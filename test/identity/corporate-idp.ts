import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, JWK } from 'jose';

/** A person at the corporate IdP (the dev sign-in page's "login" is the subject). */
export interface IdpAccount {
  sub: string;
  email: string;
  email_verified: boolean;
  name: string;
  groups: string[];
}

export const IDP_CLIENT_ID = 'secure-mcp-gateway';
export const IDP_CLIENT_SECRET = 'corporate-idp-client-secret-for-tests-0123456789';
export const IDP_AUDIENCE = 'api://secure-mcp-gateway';

type ProviderInstance = any; // oidc-provider ships no types

/**
 * The gateway's settings for the corporate IdP as provider `corp` ("Corp SSO"): its client, the
 * audience of its access tokens, groups mapped to roles; `extra` adds or overrides (domains, …).
 */
export function corpIdpEnv(idp: CorporateIdp, extra: Record<string, string> = {}): Record<string, string> {
  return {
    IDP_PROVIDERS: 'corp',
    IDP_CORP_DISPLAY_NAME: 'Corp SSO',
    IDP_CORP_ISSUER: idp.issuer,
    IDP_CORP_ALLOW_HTTP: 'true',
    IDP_CORP_CLIENT_ID: IDP_CLIENT_ID,
    IDP_CORP_CLIENT_SECRET: IDP_CLIENT_SECRET,
    IDP_CORP_SCOPES: 'openid email profile groups',
    IDP_CORP_AUDIENCES: IDP_AUDIENCE,
    IDP_CORP_ROLE_MAP: JSON.stringify({ 'gw-admins': 'admin', 'gw-developers': 'developer' }),
    ...extra,
  };
}

/**
 * The "corporate IdP" of the identity suites: panva's oidc-provider (OpenID-certified) on loopback,
 * with its development sign-in and consent pages, a client for the gateway, a groups claim, and
 * JWT access tokens for the gateway's audience. Its signing key can be rotated (the provider is
 * rebuilt on the same port with the new key first, the old one still published).
 */
export class CorporateIdp {
  readonly accounts = new Map<string, IdpAccount>();
  private provider: ProviderInstance;
  private keys: JWK[] = [];
  private redirectUris: string[] = [];
  /** The claims each access token being minted carries besides the standard ones (the IdP's extraTokenClaims). */
  private readonly extraClaims = new WeakMap<object, Record<string, unknown>>();

  private constructor(
    private readonly server: Server,
    readonly issuer: string,
  ) {}

  static async start(): Promise<CorporateIdp> {
    let idp: CorporateIdp | undefined;
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (!idp?.provider) {
        res.statusCode = 503;
        return res.end();
      }
      idp.provider.callback()(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    idp = new CorporateIdp(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return idp;
  }

  /** Builds the provider for the gateway's redirect URI with a first signing key. */
  async configure(redirectUris: string[]): Promise<void> {
    this.redirectUris = redirectUris;
    this.keys = [await newSigningKey()];
    await this.build();
  }

  /** A new signing key, used from now on; the old one stays published (as IdPs roll keys). Returns the new kid. */
  async rotateKey(): Promise<string> {
    this.keys = [await newSigningKey(), ...this.keys];
    await this.build();
    return this.keys[0].kid!;
  }

  /** The current signing key (private JWK), for tests that forge or re-sign tokens. */
  get signingKey(): JWK {
    return this.keys[0];
  }

  /** An access token for the gateway, issued by the IdP itself (its JWT access-token format, its key). */
  async accessToken(sub: string, options: { audience?: string; claims?: Record<string, unknown> } = {}): Promise<string> {
    const account = this.accounts.get(sub);
    const client = await this.provider.Client.find(IDP_CLIENT_ID);
    const audience = options.audience ?? IDP_AUDIENCE;
    const token = new this.provider.AccessToken({
      accountId: sub,
      client,
      scope: 'openid mcp',
      resourceServer: new this.provider.ResourceServer(audience, {
        audience,
        scope: 'mcp',
        accessTokenFormat: 'jwt',
        accessTokenTTL: 600,
        jwt: { sign: { alg: 'RS256' } },
      }),
    });
    this.extraClaims.set(token, { ...(account ? claimsOf(account) : {}), ...options.claims });
    return token.save();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async build(): Promise<void> {
    const accounts = this.accounts;
    // Its start-up warnings (runtime version, development interactions, in-memory storage) are the point here: quiet them.
    const { warn, info } = console;
    console.warn = console.info = () => undefined;
    try {
      const { Provider } = await import('oidc-provider');
      this.provider = this.create(Provider as unknown as new (issuer: string, configuration: unknown) => ProviderInstance, accounts);
    } finally {
      Object.assign(console, { warn, info });
    }
  }

  private create(
    Provider: new (issuer: string, configuration: unknown) => ProviderInstance,
    accounts: Map<string, IdpAccount>,
  ): ProviderInstance {
    return new Provider(this.issuer, {
      clients: [
        {
          client_id: IDP_CLIENT_ID,
          client_secret: IDP_CLIENT_SECRET,
          redirect_uris: this.redirectUris,
          response_types: ['code'],
          grant_types: ['authorization_code'],
          token_endpoint_auth_method: 'client_secret_basic',
        },
      ],
      jwks: { keys: this.keys },
      cookies: { keys: ['corporate-idp-cookie-key-for-tests'] },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
      scopes: ['openid', 'email', 'profile', 'groups', 'mcp'],
      conformIdTokenClaims: false,
      features: { devInteractions: { enabled: true } },
      ttl: { Session: 3600, Grant: 3600, Interaction: 600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
      // JWT access tokens carry the person's email and groups, as corporate IdPs are configured to.
      extraTokenClaims: async (_ctx: unknown, token: { accountId?: string }) => {
        const account = token.accountId ? accounts.get(token.accountId) : undefined;
        return this.extraClaims.get(token) ?? (account ? claimsOf(account) : undefined);
      },
      findAccount: async (_ctx: unknown, id: string) => {
        const account = accounts.get(id);
        if (!account) return undefined;
        return { accountId: id, claims: async () => ({ ...account }) };
      },
    });
  }
}

function claimsOf(account: IdpAccount): Record<string, unknown> {
  return { email: account.email, email_verified: account.email_verified, groups: account.groups };
}

async function newSigningKey(): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, alg: 'RS256', use: 'sig', kid: `k-${Math.random().toString(36).slice(2, 10)}` };
}
