import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { AuditAction, AuditService } from '@app/audit';
import { Actor, AppException, BrowserSignIns, Clock, newId, withTimeout } from '@app/core';
import { UnitOfWork } from '@app/database';
import type { UserOAuthAuth } from '../upstream-auth';
import type { UpstreamConfig } from '../upstream-config';
import { CredentialCipher } from './credential-cipher';
import { OAuthFlowStore } from './oauth-flow-store';
import { AuthorizationServerError, RefreshRefusedError, UpstreamOAuthClient, UpstreamTokens } from './upstream-oauth-client';
import { SealedCredential, UpstreamCredentialRepository } from './upstream-credential.repository';

/** The upstream configs, by the token the registry provides them under (kept here to avoid an import cycle). */
export const OAUTH_UPSTREAMS = Symbol('OAUTH_UPSTREAMS');

/** What a tool call gets: the access token and the identity of the stored value (a refreshed token has a new version). */
export interface OAuthCredential {
  id: string;
  version: number;
  secret: string;
}

/** How long a connect link (and a started authorization) stays usable. */
export const CONNECT_TTL_MS = 10 * 60_000;
/** An access token is refreshed this long before it expires. */
const EXPIRY_MARGIN_MS = 30_000;
/** The refresh lock expires by itself after this (a replica that died holding it). */
const REFRESH_LOCK_MS = 15_000;
/** How long a call waits for a refresh another call (or replica) is making. */
const REFRESH_WAIT_MS = 20_000;
const REFRESH_POLL_MS = 50;
/** How long a disconnect waits for the upstream's authorization server to revoke the tokens. */
const REVOKE_TIMEOUT_MS = 5_000;

export const CONNECT_PATHS = {
  /** The link an elicitation or error names: /connect/upstream/{ticket}. */
  start: '/connect/upstream',
  /** Where the upstream's authorization server sends the browser back (the redirect URI to register there). */
  callback: '/connect/callback',
} as const;

interface Ticket {
  userId: string;
  upstream: string;
}

interface Flow extends Ticket {
  codeVerifier: string;
  state: string;
}

interface SealedTokens {
  a: string;
  r?: string;
}

/**
 * `auth: user-oauth`: each user's own connection to an upstream made at its authorization server.
 * A call without one gets a one-time connect link (bound to the user and the upstream, short-lived,
 * no credential in it); the browser that opens it must be signed in to the gateway as that same
 * user. The gateway then runs authorization code + PKCE + resource with the browser (state and
 * verifier kept server-side, taken once), seals the user's tokens (CredentialCipher, bound to user
 * and upstream) and audits the connection in the same transaction. Expired tokens are refreshed
 * once per stored token across every call and replica (a lock; the others wait and re-read); a
 * refresh token the server refuses marks the connection broken (audited) and the user is asked
 * to connect again.
 */
@Injectable()
export class UpstreamOAuthService {
  private readonly logger = new Logger(UpstreamOAuthService.name);
  private readonly upstreams: Map<string, UpstreamConfig & { auth: UserOAuthAuth }>;
  /** Refreshes made by this replica (tests and metrics). */
  refreshes = 0;

  constructor(
    @Inject(OAUTH_UPSTREAMS) configs: UpstreamConfig[],
    private readonly repository: UpstreamCredentialRepository,
    private readonly cipher: CredentialCipher,
    private readonly unitOfWork: UnitOfWork,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly client: UpstreamOAuthClient,
    private readonly flows: OAuthFlowStore,
    private readonly browser: BrowserSignIns,
  ) {
    this.upstreams = new Map(
      configs
        .filter((config): config is UpstreamConfig & { auth: UserOAuthAuth } => config.auth.mode === 'user-oauth')
        .map((config) => [config.name, config]),
    );
  }

  handles(upstream: string): boolean {
    return this.upstreams.has(upstream);
  }

  get names(): string[] {
    return [...this.upstreams.keys()];
  }

  /** The gateway's public origin, as the sign-in pages know it; undefined while OAuth is off. */
  baseUrl(): string | undefined {
    try {
      return this.browser.registered?.baseUrl();
    } catch {
      return undefined;
    }
  }

  /** A one-time connect link for the user and upstream (nothing secret in it but its own random id). */
  async connectUrl(userId: string, upstream: string): Promise<string | undefined> {
    const base = this.baseUrl();
    if (!base || !this.upstreams.has(upstream)) return undefined;
    const ticket = randomBytes(24).toString('base64url');
    try {
      await this.flows.put('ticket', ticket, { userId, upstream } satisfies Ticket, CONNECT_TTL_MS);
    } catch (error) {
      this.logger.warn({ err: error, upstream }, 'A connect link could not be stored');
      return undefined;
    }
    return `${base}${CONNECT_PATHS.start}/${ticket}`;
  }

  /**
   * The browser opened a connect link while signed in as `browserUser`: the URL of the upstream's
   * authorization server to send it to. The link is used up either way.
   */
  async start(ticket: string, browserUser: string): Promise<string> {
    const found = await this.flows.take<Ticket>('ticket', ticket);
    if (!found)
      throw new AppException(
        'CONNECT_LINK_INVALID',
        'This connect link has expired or was already used: call the tool again for a new one',
        400,
      );
    if (found.userId !== browserUser) {
      throw new AppException(
        'CONNECT_LINK_OTHER_USER',
        'This connect link belongs to another account than the one signed in to the gateway in this browser',
        403,
      );
    }
    if (!(await this.repository.activeUser(browserUser))) throw new AppException('FORBIDDEN', 'Your account is not active', 403);
    const config = this.config(found.upstream);
    const started = await this.asServerCall(() => this.client.authorize(config, config.auth, this.callbackUrl()));
    await this.flows.put(
      'flow',
      started.state,
      { userId: found.userId, upstream: found.upstream, codeVerifier: started.codeVerifier, state: started.state } satisfies Flow,
      CONNECT_TTL_MS,
    );
    return started.url;
  }

  /** The authorization server's answer (`currentUrl`): the user's tokens stored, sealed, with the audit record. */
  async finish(currentUrl: URL, browserUser: string | undefined, actor: Actor): Promise<string> {
    const state = currentUrl.searchParams.get('state') ?? '';
    const flow = state ? await this.flows.take<Flow>('flow', state) : undefined;
    if (!flow)
      throw new AppException(
        'CONNECT_LINK_INVALID',
        'This connection attempt has expired or was already finished: call the tool again',
        400,
      );
    if (flow.userId !== browserUser) {
      throw new AppException('CONNECT_LINK_OTHER_USER', 'This connection was started for another account than the one signed in here', 403);
    }
    const config = this.config(flow.upstream);
    const error = currentUrl.searchParams.get('error');
    if (error) {
      throw new AppException(
        'CONNECT_REFUSED',
        `The authorization server of ${flow.upstream} did not authorize the connection (${error.slice(0, 64)})`,
        400,
      );
    }
    const tokens = await this.asServerCall(() => this.client.redeem(config, config.auth, currentUrl, flow.state, flow.codeVerifier));
    const sealed = this.seal(tokens, flow.userId, flow.upstream);
    await this.unitOfWork.run(async (tx) => {
      const outcome = await this.repository.upsert(tx, {
        id: newId('ucred'),
        userId: flow.userId,
        upstream: flow.upstream,
        mode: 'user-oauth',
        secretCiphertext: sealed,
        now: this.clock.now(),
        expiresAt: this.expiresAt(tokens),
      });
      await this.audit.record(tx, {
        action: AuditAction.UPSTREAM_CREDENTIAL_CONNECTED,
        userId: flow.userId,
        resource: `upstream:${flow.upstream}`,
        result: 'success',
        severity: 'info',
        ipAddress: actor.ipAddress,
        userAgent: actor.userAgent,
        details: {
          upstream: flow.upstream,
          mode: 'user-oauth',
          replaced: outcome.replaced,
          version: outcome.connection.version,
          refreshable: tokens.refreshToken !== undefined,
        },
      });
    });
    return flow.upstream;
  }

  /**
   * The user's access token for a call (refreshed first when it is about to expire), or undefined
   * when they have no usable connection (none, broken, or their account is not active).
   */
  async forCall(
    userId: string,
    upstream: string,
  ): Promise<{ credential: OAuthCredential; row: SealedCredential; resealed: boolean } | undefined> {
    const config = this.config(upstream);
    const row = await this.repository.findUsable(userId, upstream);
    if (!row || row.status !== 'active' || row.mode !== 'user-oauth') return undefined;
    const opened = this.open(row);
    if (!opened) return undefined;
    if (row.expiresAt && row.expiresAt.getTime() - EXPIRY_MARGIN_MS <= this.clock.nowMs()) {
      const renewed = await this.renew(config, row);
      return renewed ? { ...renewed, resealed: false } : undefined;
    }
    if (opened.stale) {
      await this.unitOfWork.run((tx) => this.repository.reseal(tx, row.id, row.version, this.seal(opened.tokens, userId, upstream)));
    }
    return { credential: { id: row.id, version: row.version, secret: opened.tokens.a }, row, resealed: opened.stale };
  }

  /**
   * The upstream refused `credential` (HTTP 401) before its stated expiry: refreshed once (shared
   * with every other call that saw the same token refused). The new credential, or undefined.
   */
  async renewRefused(userId: string, upstream: string, credential: { id: string; version: number }): Promise<OAuthCredential | undefined> {
    const config = this.config(upstream);
    const row = await this.repository.findUsable(userId, upstream);
    if (!row || row.id !== credential.id || row.status !== 'active') return undefined;
    if (row.version !== credential.version) return this.usable(row);
    return (await this.renew(config, row))?.credential;
  }

  /**
   * One refresh per stored token: the caller that takes the lock refreshes (unless the token was
   * already replaced meanwhile), the others wait until the stored version changes and re-read it.
   */
  private async renew(
    config: UpstreamConfig & { auth: UserOAuthAuth },
    seen: SealedCredential,
  ): Promise<{ credential: OAuthCredential; row: SealedCredential } | undefined> {
    const deadline = this.clock.nowMs() + REFRESH_WAIT_MS;
    const lockName = `refresh:${config.name}:${seen.userId}`;
    for (;;) {
      const release = await this.flows.lock(lockName, REFRESH_LOCK_MS);
      if (release) {
        try {
          const current = await this.repository.findUsable(seen.userId, config.name);
          if (!current || current.status !== 'active') return undefined;
          if (current.version !== seen.version) return this.withRow(current);
          return await this.refreshNow(config, current);
        } finally {
          await release();
        }
      }
      await new Promise((resolve) => setTimeout(resolve, REFRESH_POLL_MS));
      const current = await this.repository.findUsable(seen.userId, config.name);
      if (!current || current.status !== 'active') return undefined;
      if (current.version !== seen.version) return this.withRow(current);
      if (this.clock.nowMs() > deadline) {
        throw new AppException(
          'UPSTREAM_UNAVAILABLE',
          `Refreshing your token for upstream ${config.name} is taking too long; try again`,
          503,
        );
      }
    }
  }

  /** Under the lock: refresh at the authorization server, store (or mark broken), audit in the same transaction. */
  private async refreshNow(
    config: UpstreamConfig & { auth: UserOAuthAuth },
    row: SealedCredential,
  ): Promise<{ credential: OAuthCredential; row: SealedCredential } | undefined> {
    const opened = this.open(row);
    if (!opened) return undefined;
    const base = { userId: row.userId, resource: `upstream:${config.name}`, ipAddress: null, userAgent: null };
    if (!opened.tokens.r) {
      await this.breakConnection(row, 'no refresh token');
      return undefined;
    }
    let tokens: UpstreamTokens;
    try {
      this.refreshes += 1;
      tokens = await this.client.refresh(config, config.auth, opened.tokens.r);
    } catch (error) {
      if (error instanceof RefreshRefusedError) {
        await this.breakConnection(row, 'invalid_grant');
        return undefined;
      }
      throw new AppException(
        'UPSTREAM_UNAVAILABLE',
        `The authorization server of upstream ${config.name} could not refresh your token (${(error as Error).message}); try again`,
        503,
      );
    }
    const now = this.clock.now();
    const updated = await this.unitOfWork.run(async (tx) => {
      const connection = await this.repository.refreshed(tx, {
        id: row.id,
        version: row.version,
        secretCiphertext: this.seal(tokens, row.userId, config.name),
        expiresAt: this.expiresAt(tokens),
        now,
      });
      if (connection) {
        await this.audit.record(tx, {
          ...base,
          action: AuditAction.UPSTREAM_CREDENTIAL_REFRESHED,
          result: 'success',
          severity: 'info',
          details: { upstream: config.name, mode: 'user-oauth', version: connection.version },
        });
      }
      return connection;
    });
    if (!updated) return undefined;
    return {
      credential: { id: updated.id, version: updated.version, secret: tokens.accessToken },
      row: { ...updated, secretCiphertext: '' },
    };
  }

  /**
   * A user-oauth connection was deleted (its deletion and audit record committed): its refresh
   * token, then its access token, are revoked at the upstream's authorization server (RFC 7009),
   * so they stop working there too, not only here (a server that does not revoke a token type,
   * such as JWT access tokens, says so: recorded as `notRevocable`). Never fails the disconnect: the outcome is
   * audited (`upstream.credential.revoked`, success or failure with the reason) and a server
   * that does not answer within REVOKE_TIMEOUT_MS is given up on.
   */
  async revokeDeleted(row: SealedCredential, actor: Actor): Promise<void> {
    const config = this.upstreams.get(row.upstream);
    const opened = config ? this.open(row) : undefined;
    if (!config || !opened) return;
    const tokens: Array<[string, 'refresh_token' | 'access_token']> = opened.tokens.r
      ? [
          [opened.tokens.r, 'refresh_token'],
          [opened.tokens.a, 'access_token'],
        ]
      : [[opened.tokens.a, 'access_token']];
    const revoked: string[] = [];
    const unsupported: string[] = [];
    let reason: string | undefined;
    try {
      await withTimeout(
        (async () => {
          for (const [token, hint] of tokens) {
            const outcome = await this.client.revoke(config, config.auth, token, hint);
            if (outcome === 'no-endpoint') {
              reason = 'the authorization server offers no revocation endpoint';
              return;
            }
            (outcome === 'revoked' ? revoked : unsupported).push(hint);
          }
        })(),
        REVOKE_TIMEOUT_MS,
      );
    } catch (error) {
      reason = error instanceof AuthorizationServerError ? error.message : 'the authorization server did not answer';
    }
    if (reason) this.logger.warn({ upstream: row.upstream, reason }, "Revoking a disconnected user's upstream tokens failed");
    await this.audit
      .recordStandalone({
        action: AuditAction.UPSTREAM_CREDENTIAL_REVOKED,
        userId: row.userId,
        resource: `upstream:${row.upstream}`,
        result: reason ? 'failure' : 'success',
        severity: reason ? 'warning' : 'info',
        ipAddress: actor.ipAddress,
        userAgent: actor.userAgent,
        details: {
          upstream: row.upstream,
          mode: 'user-oauth',
          revoked,
          // Tokens the server does not revoke (a JWT access token): valid there until they expire.
          ...(unsupported.length > 0 ? { notRevocable: unsupported } : {}),
          ...(reason ? { reason } : {}),
        },
      })
      .catch((error: unknown) => this.logger.error({ err: error }, 'The upstream revocation audit record failed'));
  }

  private async breakConnection(row: SealedCredential, reason: string): Promise<void> {
    await this.unitOfWork.run(async (tx) => {
      if (!(await this.repository.markBroken(tx, row.id, row.version, this.clock.now()))) return;
      await this.audit.record(tx, {
        action: AuditAction.UPSTREAM_CREDENTIAL_REFRESH_FAILED,
        userId: row.userId,
        resource: `upstream:${row.upstream}`,
        result: 'failure',
        severity: 'warning',
        ipAddress: null,
        userAgent: null,
        details: { upstream: row.upstream, mode: 'user-oauth', reason },
      });
    });
  }

  private withRow(row: SealedCredential): { credential: OAuthCredential; row: SealedCredential } | undefined {
    const credential = this.usable(row);
    return credential ? { credential, row } : undefined;
  }

  private usable(row: SealedCredential): OAuthCredential | undefined {
    const opened = this.open(row);
    return opened ? { id: row.id, version: row.version, secret: opened.tokens.a } : undefined;
  }

  private open(row: SealedCredential): { tokens: SealedTokens; stale: boolean } | undefined {
    try {
      const opened = this.cipher.open(row.secretCiphertext, row.userId, row.upstream);
      return { tokens: JSON.parse(opened.plaintext) as SealedTokens, stale: opened.stale };
    } catch (error) {
      this.logger.error(
        { upstream: row.upstream, userId: row.userId, reason: (error as Error).message },
        'An upstream connection cannot be decrypted',
      );
      return undefined;
    }
  }

  private seal(tokens: UpstreamTokens | SealedTokens, userId: string, upstream: string): string {
    const value: SealedTokens =
      'accessToken' in tokens ? { a: tokens.accessToken, ...(tokens.refreshToken ? { r: tokens.refreshToken } : {}) } : tokens;
    return this.cipher.seal(JSON.stringify(value), userId, upstream);
  }

  private expiresAt(tokens: UpstreamTokens): Date | null {
    return tokens.expiresInS === undefined ? null : new Date(this.clock.nowMs() + tokens.expiresInS * 1000);
  }

  private callbackUrl(): string {
    return `${this.baseUrl() ?? ''}${CONNECT_PATHS.callback}`;
  }

  private config(upstream: string): UpstreamConfig & { auth: UserOAuthAuth } {
    const config = this.upstreams.get(upstream);
    if (!config) throw AppException.notFound(`No upstream named ${upstream} connects your own account`);
    return config;
  }

  private async asServerCall<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof AppException) throw error;
      const reason =
        error instanceof AuthorizationServerError ? error.message : ((error as { error?: string }).error ?? 'no usable answer');
      this.logger.warn({ reason }, 'The authorization server of an upstream could not complete a connection');
      throw new AppException('CONNECT_FAILED', `The upstream's authorization server could not complete the connection (${reason})`, 502);
    }
  }
}
