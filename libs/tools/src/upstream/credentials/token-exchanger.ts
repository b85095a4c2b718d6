import { Inject, Injectable, Logger } from '@nestjs/common';
import { createPrivateKey, KeyObject, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { APP_CONFIG, AppConfig, Clock } from '@app/core';
import { ToolError } from '../../provider/tool-error';
import type { TokenExchangeAuth } from '../upstream-auth';
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
  private readonly pending = new Map<string, Promise<Cached>>();
  private exchanges = 0;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly clock: Clock,
  ) {
    this.signingKey = config.secrets.oauthSigningKey ? createPrivateKey(config.secrets.oauthSigningKey) : undefined;
    this.alg = this.signingKey?.asymmetricKeyType === 'ec' ? 'ES256' : 'RS256';
  }

  /** The caller's token for the upstream, and whether it was exchanged for this call (not from the cache). */
  async tokenFor(
    user: { id: string; email: string },
    upstream: string,
    auth: TokenExchangeAuth,
  ): Promise<{ credential: UsableCredential; exchanged: boolean }> {
    const key = `${upstream}\u0000${user.id}`;
    const cached = this.cache.get(key);
    if (cached && cached.expiresAtMs - EXPIRY_MARGIN_MS > this.clock.nowMs()) return { credential: cached.credential, exchanged: false };
    let pending = this.pending.get(key);
    if (!pending) {
      pending = this.exchange(user, upstream, auth).finally(() => this.pending.delete(key));
      this.pending.set(key, pending);
    }
    const fresh = await pending;
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(key, fresh);
    return { credential: fresh.credential, exchanged: true };
  }

  /** Forgets a user's tokens (suspension, a token the upstream refused). */
  forget(userId: string, upstream: string): void {
    this.cache.delete(`${upstream}\u0000${userId}`);
  }

  private async exchange(user: { id: string; email: string }, upstream: string, auth: TokenExchangeAuth): Promise<Cached> {
    if (!this.signingKey) {
      throw new ToolError(
        UPSTREAM_TOKEN_EXCHANGE_FAILED,
        `The gateway has no signing key for token exchange with upstream ${upstream} (set OAUTH_SIGNING_KEY); ask an administrator`,
      );
    }
    const nowS = Math.floor(this.clock.nowMs() / 1000);
    const subjectToken = await new SignJWT({ email: user.email })
      .setProtectedHeader({ alg: this.alg, typ: 'JWT' })
      .setIssuer(auth.subjectIssuer)
      .setSubject(user.id)
      .setAudience(auth.tokenEndpoint)
      .setIssuedAt(nowS)
      .setExpirationTime(nowS + SUBJECT_TTL_S)
      .setJti(randomUUID())
      .sign(this.signingKey);
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
      subject_token: subjectToken,
      subject_token_type: JWT_TOKEN_TYPE,
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
