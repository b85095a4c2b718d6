import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHash, createPrivateKey, KeyObject, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { APP_CONFIG, AppConfig, Clock } from '@app/core';
import { ToolError } from '../../provider/tool-error';
import type { TokenExchangeAuth } from '../upstream-auth';
import { CredentialErrorCode } from './credential-errors';
import { SharedExchanged, SharedExchangeCache } from './shared-exchange-cache';
import type { UsableCredential } from './upstream-credential.service';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** The code of a call whose token exchange the IdP refused or could not answer. */
export const UPSTREAM_TOKEN_EXCHANGE_FAILED = 'UPSTREAM_TOKEN_EXCHANGE_FAILED';

/** A token is used until this long before it expires. */
const EXPIRY_MARGIN_MS = 30_000;
/** When the IdP says nothing of expiry. */
const DEFAULT_TTL_S = 300;
/** Lifetime of the subject token the gateway signs for one exchange. */
const SUBJECT_TTL_S = 60;
const MAX_CACHED = 10_000;

interface Cached {
  credential: UsableCredential;
  expiresAtMs: number;
}

/**
 * RFC 8693 token exchange for upstreams declared `auth: token-exchange`. The gateway signs a
 * short-lived JWT about the caller (iss `subjectIssuer`, sub the user id, aud the token endpoint;
 * OAUTH_SIGNING_KEY, the key the gateway's JWKS publishes) and exchanges it at the IdP's token
 * endpoint (openid-client, client_secret_basic) for an access token of the upstream's audience.
 * The token is cached per user and upstream until shortly before it expires; concurrent calls of
 * one user share one exchange.
 */
@Injectable()
export class TokenExchanger {
  private readonly logger = new Logger(TokenExchanger.name);
  /** Absent while OAuth is off without a key: the server must still start (no token-exchange upstream can be called then). */
  private readonly signingKey: KeyObject | undefined;
  private readonly alg: 'ES256' | 'RS256';
  private readonly cache = new Map<string, Cached>();
  private readonly pending = new Map<string, Promise<{ cached: Cached; exchanged: boolean }>>();
  private exchanges = 0;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly clock: Clock,
    private readonly shared: SharedExchangeCache,
  ) {
    this.signingKey = config.secrets.oauthSigningKey ? createPrivateKey(config.secrets.oauthSigningKey) : undefined;
    this.alg = this.signingKey?.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256';
  }

  /** The caller's token for the upstream, and whether it was exchanged for this call (not from the cache). */
  async tokenFor(
    user: { id: string; email: string },
    upstream: string,
    auth: TokenExchangeAuth,
    idpToken?: string,
  ): Promise<{ credential: UsableCredential; exchanged: boolean }> {
    if (auth.subjectToken === 'caller-idp' && !idpToken) throw idpTokenRequired(upstream);
    // One cached token per subject token: a new IdP token of the user is exchanged again.
    const key = `${upstream}:${user.id}:${auth.subjectToken === 'caller-idp' && idpToken ? fingerprint(idpToken) : 'gateway'}`;
    const cached = this.cache.get(key);
    if (cached && cached.expiresAtMs - EXPIRY_MARGIN_MS > this.clock.nowMs()) return { credential: cached.credential, exchanged: false };
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.sharedOrExchanged(key, user, upstream, auth, idpToken).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    const fresh = await pending;
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(key, fresh.cached);
    return { credential: fresh.cached.credential, exchanged: fresh.exchanged };
  }

  /**
   * Another replica's token when the deployment shares one (Redis), else an exchange by this
   * replica, shared for the others: one exchange per user, upstream and subject for all replicas.
   */
  private async sharedOrExchanged(
    key: string,
    user: { id: string; email: string },
    upstream: string,
    auth: TokenExchangeAuth,
    idpToken: string | undefined,
  ): Promise<{ cached: Cached; exchanged: boolean }> {
    const usable = (found: SharedExchanged | undefined): Cached | undefined =>
      found && found.expiresAtMs - EXPIRY_MARGIN_MS > this.clock.nowMs()
        ? { credential: { id: `exchange:${user.id}`, version: found.version, secret: found.secret }, expiresAtMs: found.expiresAtMs }
        : undefined;
    const shared = usable(await this.shared.get(key, user.id, upstream));
    if (shared) return { cached: shared, exchanged: false };
    const claimed = await this.shared.claim(key);
    if (!claimed) {
      const theirs = usable(await this.shared.await(key, user.id, upstream));
      if (theirs) return { cached: theirs, exchanged: false };
    }
    try {
      const fresh = await this.exchange(user, upstream, auth, idpToken);
      await this.shared.set(
        key,
        user.id,
        upstream,
        { secret: fresh.credential.secret, version: fresh.credential.version, expiresAtMs: fresh.expiresAtMs },
        fresh.expiresAtMs - EXPIRY_MARGIN_MS - this.clock.nowMs(),
      );
      return { cached: fresh, exchanged: true };
    } finally {
      if (claimed) await this.shared.release(key);
    }
  }

  /** The JWT about the caller the gateway signs as subject (`subjectToken: gateway`). */
  private signedSubject(user: { id: string; email: string }, upstream: string, auth: TokenExchangeAuth): Promise<string> {
    if (!this.signingKey) {
      throw new ToolError(
        UPSTREAM_TOKEN_EXCHANGE_FAILED,
        `The gateway has no signing key for token exchange with upstream ${upstream} (set OAUTH_SIGNING_KEY); ask an administrator`,
      );
    }
    const nowS = Math.floor(this.clock.nowMs() / 1000);
    return new SignJWT({ email: user.email })
      .setProtectedHeader({ alg: this.alg, typ: 'JWT' })
      .setIssuer(auth.subjectIssuer)
      .setSubject(user.id)
      .setAudience(auth.tokenEndpoint)
      .setIssuedAt(nowS)
      .setExpirationTime(nowS + SUBJECT_TTL_S)
      .setJti(randomUUID())
      .sign(this.signingKey);
  }

  /** Forgets a user's tokens (suspension, a token the upstream refused). */
  forget(userId: string, upstream: string): void {
    const prefix = `${upstream}:${userId}:`;
    const keys = [...new Set([`${prefix}gateway`, ...[...this.cache.keys()].filter((key) => key.startsWith(prefix))])];
    for (const key of keys) this.cache.delete(key);
    void this.shared.forget(userId, upstream, keys);
  }

  private async exchange(
    user: { id: string; email: string },
    upstream: string,
    auth: TokenExchangeAuth,
    idpToken: string | undefined,
  ): Promise<Cached> {
    const subject =
      auth.subjectToken === 'caller-idp' && idpToken
        ? { subject_token: idpToken, subject_token_type: ACCESS_TOKEN_TYPE }
        : { subject_token: await this.signedSubject(user, upstream, auth), subject_token_type: JWT_TOKEN_TYPE };
    const endpoint = new URL(auth.tokenEndpoint);
    const client = new oidc.Configuration(
      { issuer: endpoint.origin, token_endpoint: auth.tokenEndpoint },
      auth.clientId,
      undefined,
      oidc.ClientSecretBasic(auth.clientSecret),
    );
    // Plain http only to this machine (tests, a sidecar); anything else must be https.
    if (endpoint.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(endpoint.hostname))
      oidc.allowInsecureRequests(client);
    const parameters: Record<string, string> = {
      ...subject,
      requested_token_type: ACCESS_TOKEN_TYPE,
      audience: auth.audience,
      ...(auth.resource ? { resource: auth.resource } : {}),
      ...(auth.scope ? { scope: auth.scope } : {}),
    };
    let response;
    try {
      response = await oidc.genericGrantRequest(client, TOKEN_EXCHANGE_GRANT, parameters);
    } catch (error) {
      const code = (error as { error?: unknown }).error;
      const reason = typeof code === 'string' ? code : 'no usable answer';
      this.logger.warn({ upstream, userId: user.id, reason }, 'Token exchange for an upstream failed');
      throw new ToolError(
        UPSTREAM_TOKEN_EXCHANGE_FAILED,
        `The identity provider gave no token for upstream ${upstream} on your behalf (${reason}); ask an administrator if this persists`,
      );
    }
    this.exchanges += 1;
    const ttlS = typeof response.expires_in === 'number' && response.expires_in > 0 ? response.expires_in : DEFAULT_TTL_S;
    return {
      credential: { id: `exchange:${user.id}`, version: this.exchanges, secret: response.access_token },
      expiresAtMs: this.clock.nowMs() + ttlS * 1000,
    };
  }
}

/** A short, one-way name of a subject token (cache keys): the token itself is never kept as a key. */
function fingerprint(token: string): string {
  return createHash('sha256').update(token).digest('base64url').slice(0, 22);
}

/** The upstream exchanges the caller's own IdP token, and this caller authenticated otherwise. */
function idpTokenRequired(upstream: string): ToolError {
  return new ToolError(
    CredentialErrorCode.UPSTREAM_CREDENTIAL_REQUIRED,
    `Upstream ${upstream} acts with a token your identity provider issues in exchange for your own IdP access token: call the gateway with your identity provider's access token (not a gateway login or API key), then try again`,
  );
}
