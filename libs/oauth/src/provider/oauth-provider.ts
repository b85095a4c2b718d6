import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
import { AuditAction, auditEvent, AuditService } from '@app/audit';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { APP_CONFIG, AppConfig, BrowserSignIn, Clock, PAGES_CLIENT_ID, PAGES_SIGNED_IN_PATH } from '@app/core';
import { UnitOfWork } from '@app/database';
import { UsersService } from '@app/users';
import { OAuthGrantsService } from '../grants/oauth-grants.service';
import { isMcpResource } from '../mcp-resources';
import { MCP_SCOPE, OFFLINE_ACCESS, RESOURCE_SCOPES } from '../oauth-scopes';
import { errorPage } from '../pages/sign-in-pages';
import { OAuthStoreRepository } from '../store/oauth-store.repository';
import { oidcAdapterClass } from '../store/oidc-adapter';
import { AlreadyConsumed, OAuthWriteScope } from '../store/oauth-write-scope';
import { OAuthIssuer } from './oauth-issuer';
import { OAuthSigningKey, signingKeyOf } from './oauth-keys';

/** Where the provider's endpoints live (the issuer is the origin; see OAuthIssuer). */
export const OAUTH_ROUTES = {
  authorization: '/oauth/authorize',
  token: '/oauth/token',
  jwks: '/oauth/jwks',
  registration: '/oauth/register',
  revocation: '/oauth/revoke',
  // Disabled features keep routes of their own under /oauth.
  userinfo: '/oauth/userinfo',
  end_session: '/oauth/logout',
  introspection: '/oauth/introspect',
  pushed_authorization_request: '/oauth/par',
  device_authorization: '/oauth/device/auth',
  code_verification: '/oauth/device',
  backchannel_authentication: '/oauth/backchannel',
  challenge: '/oauth/challenge',
  credential: '/oauth/credential',
} as const;

export const INTERACTION_PREFIX = '/oauth/interaction';

/** The provider's endpoints whose writes commit with their audit records (OAuthWriteScope). */
const COLLECTED_ROUTES: ReadonlySet<string> = new Set([OAUTH_ROUTES.token, OAUTH_ROUTES.revocation, OAUTH_ROUTES.registration]);

/* oidc-provider is untyped JavaScript: its context and models are `any` here. */
export type OidcProvider = any;
type OidcContext = any;

/**
 * The OpenID-certified provider library (oidc-provider, panva) configured as the MCP endpoints'
 * OAuth 2.1 authorization server: authorization code with PKCE (S256, required for every client),
 * exact redirect URIs, `iss` in every authorization response (RFC 9207), resource indicators
 * (RFC 8707) whose access tokens are JWTs (RFC 9068) with the endpoint's canonical URL as audience,
 * refresh tokens rotated on every use with reuse revoking the grant, clients pre-registered, by
 * Client ID Metadata Document or (if enabled) dynamic registration. Built once the issuer is known
 * (the server listens); ESM-only, loaded with a dynamic import.
 */
@Injectable()
export class OAuthProvider {
  private readonly logger = new Logger(OAuthProvider.name);
  private building: Promise<OidcProvider> | undefined;
  /** Read on first use: with OAuth off there may be no key, and nothing must fail for it. */
  private key: Promise<OAuthSigningKey> | undefined;
  private readonly writes = new OAuthWriteScope();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly issuer: OAuthIssuer,
    private readonly store: OAuthStoreRepository,
    private readonly grants: OAuthGrantsService,
    private readonly users: UsersService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly unitOfWork: UnitOfWork,
  ) {}

  /** The issuer (OAUTH_ISSUER or the listen address); throws before the server listens. */
  issuerUrl(): string {
    const issuer = this.issuer.value;
    if (!issuer) throw new Error('The OAuth issuer is not known before the server listens (set OAUTH_ISSUER)');
    return issuer;
  }

  signingKey(): Promise<OAuthSigningKey> {
    this.key ??= signingKeyOf(this.config.secrets.oauthSigningKey);
    return this.key;
  }

  /** The provider (built on first use). */
  get(): Promise<OidcProvider> {
    this.building ??= this.build().catch((error: unknown) => {
      this.building = undefined;
      throw error;
    });
    return this.building;
  }

  /** BrowserSignIn for the gateway's own pages: the sign-in session cookie of these OAuth pages. */
  browserSignIn(): BrowserSignIn {
    return {
      baseUrl: () => this.issuerUrl().replace(/\/$/, ''),
      signedInUser: async (request: IncomingMessage, response: ServerResponse) => {
        const provider = await this.get();
        const session = await provider.Session.get(provider.createContext(request, response));
        return typeof session?.accountId === 'string' ? session.accountId : undefined;
      },
      signInUrl: (state: string, codeChallenge: string) => {
        const base = this.issuerUrl().replace(/\/$/, '');
        const query = new URLSearchParams({
          client_id: PAGES_CLIENT_ID,
          redirect_uri: `${base}${PAGES_SIGNED_IN_PATH}`,
          response_type: 'code',
          scope: 'openid',
          state,
          code_challenge: codeChallenge,
          code_challenge_method: 'S256',
        });
        return `${base}${OAUTH_ROUTES.authorization}?${query.toString()}`;
      },
    };
  }

  private async build(): Promise<OidcProvider> {
    const issuer = this.issuerUrl();
    const { Provider, errors } = await import('oidc-provider');
    const key = await this.signingKey();
    const oauth = this.config.oauth;
    const grants = this.grants;
    const users = this.users;
    const resourceHosts = () => this.issuer.resourceHosts();

    const configuration = {
      adapter: oidcAdapterClass(
        this.store,
        this.clock,
        { grantDestroyed: (grantId, tx) => grants.grantDestroyed(grantId, tx) },
        this.writes,
        (write) => this.unitOfWork.run(write),
      ),
      jwks: { keys: [key.privateJwk] },
      cookies: {
        keys: [this.cookieKey()],
        long: { httpOnly: true, sameSite: 'lax', signed: true },
        short: { httpOnly: true, sameSite: 'lax', signed: true },
      },
      // The gateway's own pages (upstream connect pages) sign browsers in through the sign-in page
      // as this first-party client; its code is never redeemed (the session cookie is what counts).
      clients: [
        {
          client_id: PAGES_CLIENT_ID,
          client_name: 'Secure MCP Server',
          redirect_uris: [`${issuer}${PAGES_SIGNED_IN_PATH}`],
          grant_types: ['authorization_code'],
          response_types: ['code'],
          token_endpoint_auth_method: 'none',
        },
      ],
      clientDefaults: {
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        id_token_signed_response_alg: key.alg,
      },
      clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      responseTypes: ['code'],
      // S256 is the only method the library implements; required of every client, public or not.
      pkce: { required: () => true },
      // Listed in the metadata and accepted in registered (and CIMD) client metadata; the resource
      // servers (getResourceServerInfo) decide what lands in an access token.
      scopes: ['openid', OFFLINE_ACCESS, ...RESOURCE_SCOPES],
      allowOmittingSingleRegisteredRedirectUri: false,
      routes: OAUTH_ROUTES,
      interactions: { url: (_ctx: OidcContext, interaction: { uid: string }) => `${INTERACTION_PREFIX}/${interaction.uid}` },
      features: {
        devInteractions: { enabled: false },
        dPoP: { enabled: false },
        introspection: { enabled: false },
        userinfo: { enabled: false },
        rpInitiatedLogout: { enabled: false },
        pushedAuthorizationRequests: { enabled: false },
        revocation: { enabled: true },
        registration: { enabled: oauth.dynamicRegistration, initialAccessToken: false, issueRegistrationAccessToken: false },
        clientIdMetadataDocument: oauth.cimd.enabled
          ? {
              enabled: true,
              ack: 'draft-02',
              allowFetch: async (_ctx: OidcContext, clientId: string) => cimdHostAllowed(clientId, oauth.cimd.allowedHosts),
              allowClient: async () => true,
              cacheDuration: { min: 60, max: 3600 },
            }
          : { enabled: false },
        resourceIndicators: {
          enabled: true,
          defaultResource: async (_ctx: OidcContext, _client: unknown, oneOf?: string) => oneOf,
          useGrantedResource: async () => true,
          getResourceServerInfo: async (_ctx: OidcContext, indicator: string, client: { clientIdMetadataDocument?: boolean }) => {
            if (!isMcpResource(indicator, resourceHosts())) throw new errors.InvalidTarget();
            const allowed = client.clientIdMetadataDocument && oauth.cimd.allowedScopes.length > 0 ? oauth.cimd.allowedScopes : undefined;
            const scopes = allowed ? RESOURCE_SCOPES.filter((scope) => allowed.includes(scope)) : RESOURCE_SCOPES;
            return {
              scope: scopes.join(' '),
              audience: indicator,
              accessTokenTTL: oauth.accessTokenTtlSec,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: key.alg } },
            };
          },
        },
      },
      // A browser-based client may call the token endpoint from the origin of one of its redirect URIs.
      clientBasedCORS: (_ctx: OidcContext, origin: string, client: { redirectUris?: string[] }) =>
        (client.redirectUris ?? []).some((uri) => originOf(uri) === origin),
      findAccount: async (_ctx: OidcContext, sub: string, token?: { grantId?: string }) => {
        const state = await users.accessState(sub);
        if (!state || state.status !== 'active') return undefined;
        if (token?.grantId && !(await grants.activeSessionOf(token.grantId))) return undefined;
        return { accountId: sub, claims: async () => ({ sub }) };
      },
      // A consent is remembered per user and client (not per browser) while its grant is usable.
      loadExistingGrant: async (ctx: OidcContext) => {
        const accountId: string | undefined = ctx.oidc.session?.accountId;
        if (accountId && ctx.oidc.client.clientId === PAGES_CLIENT_ID) {
          // The gateway's own pages need no consent to the gateway: only the sign-in (openid) is granted.
          const grant = new ctx.oidc.provider.Grant({ accountId, clientId: PAGES_CLIENT_ID });
          grant.addOIDCScope('openid');
          await grant.save();
          return grant;
        }
        const grantId =
          ctx.oidc.result?.consent?.grantId ?? (accountId ? await grants.remembered(accountId, ctx.oidc.client.clientId) : undefined);
        if (!grantId) return undefined;
        const grant = await ctx.oidc.provider.Grant.find(grantId);
        return grant && grant.accountId === accountId ? grant : undefined;
      },
      // Our access tokens name the grant's gateway session: ending it refuses them at once.
      extraTokenClaims: async (_ctx: OidcContext, token: { kind: string; grantId?: string }) => {
        if (token.kind !== 'AccessToken' || !token.grantId) return undefined;
        const sid = await grants.activeSessionOf(token.grantId);
        if (!sid) throw new errors.InvalidGrant('grant revoked');
        return { sid };
      },
      // Refresh tokens go to every client allowed the refresh_token grant (offline_access or not),
      // and outlive the browser sign-in: the gateway session governs them.
      issueRefreshToken: async (_ctx: OidcContext, client: { grantTypeAllowed(type: string): boolean }) =>
        client.grantTypeAllowed('refresh_token'),
      expiresWithSession: async () => false,
      rotateRefreshToken: true,
      ttl: {
        AccessToken: oauth.accessTokenTtlSec,
        AuthorizationCode: 60,
        RefreshToken: oauth.refreshTokenTtlSec,
        Grant: oauth.refreshTokenTtlSec,
        Interaction: 600,
        Session: this.config.auth.sessionIdleTimeoutSec,
        IdToken: 600,
      },
      renderError: async (ctx: OidcContext, out: { error?: string; error_description?: string }) => {
        ctx.type = 'html';
        ctx.set('content-security-policy', "default-src 'none'; frame-ancestors 'none'; base-uri 'none'");
        ctx.body = errorPage('Sign-in failed', out.error_description ?? out.error ?? 'The request could not be completed');
      },
      ...(oauth.cimd.allowPrivate ? { fetch: testFetch(oauth.cimd.caFile) } : {}),
    };

    const provider = new Provider(issuer, configuration);
    // OAuthRoutes sets the forwarded headers the provider sees (the issuer's scheme, Fastify's client address).
    provider.proxy = true;
    provider.use((ctx: OidcContext, next: () => Promise<void>) => this.committed(ctx, next));
    provider.use(defaultScope);
    this.auditEvents(provider);
    return provider;
  }

  /** Cookie signing key, derived from ENCRYPTION_KEY (never the key itself). */
  private cookieKey(): string {
    return createHmac('sha256', this.config.secrets.encryptionKey).update('oauth cookies').digest('base64url');
  }

  /**
   * Token, revocation and registration requests: the library runs with its writes collected
   * (OAuthWriteScope); once it has answered, its writes (the consumed code, the rotated refresh
   * token, the revoked grant and its ended session) and their audit records (issue, refresh, reuse,
   * revocation, registration) commit in one transaction before the answer leaves. If that fails
   * nothing is written and the client gets an OAuth error instead of the tokens: no token exists
   * without its audit record, and a refused refresh leaves the old refresh token as it was.
   */
  private async committed(ctx: OidcContext, next: () => Promise<void>): Promise<void> {
    if (ctx.method !== 'POST' || !COLLECTED_ROUTES.has(ctx.path)) return next();
    const { writes, done } = this.writes.collect(next);
    await done;
    // A failure inside the library (its own 5xx answer) writes nothing it had noted.
    if (ctx.status >= 500 || writes.writes.length + writes.audits.length + writes.endings.length === 0) return;
    try {
      await this.unitOfWork.run(async (tx) => {
        for (const write of writes.writes) await write(tx);
        await this.audit.recordMany(tx, writes.audits);
        for (const ending of writes.endings) await ending(tx);
      });
    } catch (error) {
      ctx.set('cache-control', 'no-store');
      ctx.remove('www-authenticate');
      if (error instanceof AlreadyConsumed) {
        await this.revokeRaced(ctx, error.model);
        ctx.status = 400;
        ctx.body = { error: 'invalid_grant', error_description: 'grant already used' };
        return;
      }
      this.logger.error({ err: error }, 'OAuth request not committed (store or audit write failed): nothing was issued');
      ctx.status = 500;
      ctx.body = { error: 'server_error', error_description: 'The request could not be recorded; nothing was issued or changed' };
    }
  }

  /**
   * A code or refresh token that another request consumed between this request's read and its
   * commit was presented twice: a replay like any other (RFC 9700 §4.14, RFC 6749 §4.1.2), only
   * concurrent. As the library does for a replay it sees, the grant is revoked (its tokens and
   * codes deleted, its session ended) with a `oauth.refresh_reuse` record, in one transaction:
   * the request that won holds nothing usable either. Never fails the answer (invalid_grant).
   */
  private async revokeRaced(ctx: OidcContext, model: string): Promise<void> {
    const grantId: unknown = ctx.oidc?.entities?.[model]?.grantId;
    if (typeof grantId !== 'string') return;
    try {
      await this.unitOfWork.run(async (tx) => {
        await this.audit.record(
          tx,
          auditEvent(
            AuditAction.OAUTH_REFRESH_REUSE,
            { ipAddress: ctx.ip ?? null, userAgent: ctx.get?.('user-agent') || null },
            {
              userId: ctx.oidc.entities?.Account?.accountId ?? ctx.oidc.entities?.[model]?.accountId ?? null,
              resource: `oauth_grant:${grantId}`,
              result: 'failure',
              severity: 'critical',
              details: { clientId: ctx.oidc.client?.clientId, grantRevoked: true, concurrent: true, presented: model },
            },
          ),
        );
        await this.store.destroyByGrant(grantId, undefined, tx);
        await this.grants.grantDestroyed(grantId, tx);
      });
    } catch (error) {
      this.logger.error({ err: error }, 'A grant whose code or refresh token was presented twice at once could not be revoked');
    }
  }

  /**
   * Token issue, refresh, reuse detection and dynamic registrations, as the library reports them:
   * noted in the request's OAuthWriteScope and committed with the writes (see `committed`).
   */
  private auditEvents(provider: OidcProvider): void {
    const actorOf = (ctx: OidcContext) => ({ ipAddress: ctx.ip ?? null, userAgent: ctx.get?.('user-agent') || null });
    const record = (entry: ReturnType<typeof auditEvent>) => {
      const collected = this.writes.current();
      if (collected) collected.audits.push(entry);
      else this.audit.recordStandalone(entry).catch((error: unknown) => this.logger.error({ err: error }, 'OAuth audit record failed'));
    };
    provider.on('grant.success', (ctx: OidcContext) => {
      const grantType: string = ctx.oidc.params?.grant_type;
      const token = ctx.oidc.entities?.AccessToken;
      const userId: string | null = ctx.oidc.entities?.Account?.accountId ?? null;
      const action = grantType === 'refresh_token' ? AuditAction.OAUTH_REFRESH : AuditAction.OAUTH_TOKEN_ISSUED;
      record(
        auditEvent(action, actorOf(ctx), {
          userId,
          resource: token?.grantId ? `oauth_grant:${token.grantId}` : null,
          details: { clientId: ctx.oidc.client?.clientId, grantType, audience: token?.aud, scope: token?.scope },
        }),
      );
    });
    provider.on('grant.revoked', (ctx: OidcContext, grantId: string) => {
      if (ctx.oidc?.route !== 'token') return;
      record(
        auditEvent(AuditAction.OAUTH_REFRESH_REUSE, actorOf(ctx), {
          userId: ctx.oidc.entities?.Account?.accountId ?? null,
          resource: `oauth_grant:${grantId}`,
          result: 'failure',
          severity: 'critical',
          details: { clientId: ctx.oidc.client?.clientId, grantRevoked: true },
        }),
      );
    });
    provider.on(
      'registration_create.success',
      (ctx: OidcContext, client: { clientId: string; clientName?: string; redirectUris?: string[] }) => {
        record(
          auditEvent(AuditAction.OAUTH_CLIENT_CREATED, actorOf(ctx), {
            userId: null,
            resource: `oauth_client:${client.clientId}`,
            details: { clientName: client.clientName ?? null, redirectUris: client.redirectUris ?? [], dynamic: true },
          }),
        );
      },
    );
    provider.on('server_error', (_ctx: OidcContext, error: unknown) => this.logger.error({ err: error }, 'OAuth provider error'));
  }
}

/**
 * RFC 6749 §3.3: a request without `scope` is processed with the server's default, `mcp:tools`
 * (the conformance suite's authorization request, and hosts that rely on the resource metadata).
 */
async function defaultScope(ctx: OidcContext, next: () => Promise<void>): Promise<void> {
  if (ctx.method === 'GET' && ctx.path === OAUTH_ROUTES.authorization) {
    const query = new URLSearchParams(ctx.querystring);
    if (!query.get('scope')) {
      query.set('scope', MCP_SCOPE);
      ctx.querystring = query.toString();
    }
  }
  await next();
}

/** OAUTH_CIMD_ALLOWED_HOSTS: exact host names or `*.suffix`; empty allows every (public) host. */
export function cimdHostAllowed(clientId: string, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  const host = URL.parse(clientId)?.hostname.toLowerCase();
  if (!host) return false;
  return allowed.some((entry) => (entry.startsWith('*.') ? host.endsWith(entry.slice(1)) : host === entry));
}

function originOf(uri: string): string | undefined {
  const url = URL.parse(uri);
  return url && url.origin !== 'null' ? url.origin : undefined;
}

/**
 * Tests only (OAUTH_CIMD_ALLOW_PRIVATE): documents on loopback, over https with OAUTH_CIMD_CA_FILE
 * trusted. Replaces the library's fetch (whose SSRF guard refuses special-use addresses) with a
 * plain node:http(s) request; like the library's, it never follows a redirect.
 */
export function testFetch(caFile: string | undefined): (url: string, options: RequestInit) => Promise<Response> {
  const ca = caFile ? [...rootCertificates, readFileSync(caFile, 'utf8')] : undefined;
  return (url, options) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      const headers = Object.fromEntries(new Headers(options.headers).entries());
      const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
      const request = send(target, { method: options.method ?? 'GET', headers, ca, signal: options.signal ?? undefined }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const status = response.statusCode ?? 502;
          const answer = new Headers();
          for (const [name, value] of Object.entries(response.headers)) {
            for (const item of Array.isArray(value) ? value : value === undefined ? [] : [value]) answer.append(name, item);
          }
          const body = [204, 205, 304].includes(status) ? null : Buffer.concat(chunks);
          resolve(new Response(body, { status, headers: answer }));
        });
      });
      request.on('error', reject);
      request.end();
    });
}
