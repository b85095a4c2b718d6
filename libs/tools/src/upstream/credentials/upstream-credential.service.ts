import { Inject, Injectable, Logger } from '@nestjs/common';
import { AuditAction, AuditService } from '@app/audit';
import { Actor, AppException, Clock, newId, Principal } from '@app/core';
import { UnitOfWork } from '@app/database';
import type { EntityManager } from 'typeorm';
import type { UpstreamConfig } from '../upstream-config';
import { CredentialCipher } from './credential-cipher';
import { TokenExchanger } from './token-exchanger';
import { UpstreamConnection, UpstreamCredentialRepository } from './upstream-credential.repository';
import { UpstreamOAuthService } from './upstream-oauth.service';

/** The upstream configs, by the token the registry provides them under (kept here to avoid an import cycle). */
export const CREDENTIAL_UPSTREAMS = Symbol('CREDENTIAL_UPSTREAMS');

/** The longest secret accepted: a PAT, API key or JWT fits many times over. */
export const MAX_SECRET_LENGTH = 8192;
/** Visible ASCII and spaces only: nothing that could end a header line or smuggle another. */
const SECRET_PATTERN = /^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$/;

/** What a tool call gets: the secret and the identity of the stored value (a changed secret has a new key). */
export interface UsableCredential {
  id: string;
  version: number;
  secret: string;
}

/** A per-user upstream as its user sees it: connected or not, never the secret. */
export interface ConnectionView {
  upstream: string;
  mode: string;
  connected: boolean;
  /** A stored connection the upstream refused to refresh: the user must connect again. */
  broken: boolean;
  connectUrl: string | null;
  createdAt: Date | null;
  updatedAt: Date | null;
  lastUsedAt: Date | null;
}

/**
 * Each user's own credentials for upstreams declared `auth: user-secret`: stored write-only
 * (sealed by CredentialCipher before they reach the database, never returned), listed without
 * secrets, deleted on request; read per call for the caller only, and only while the caller's
 * account is active. Every store, use and delete commits with its audit record.
 */
@Injectable()
export class UpstreamCredentialService {
  private readonly logger = new Logger(UpstreamCredentialService.name);
  /** Upstreams that take a secret users store themselves. */
  private readonly perUser: Map<string, UpstreamConfig>;
  /** Upstreams users connect to (user-secret and user-oauth): listed, and disconnected, through the same routes. */
  private readonly connectable: Map<string, UpstreamConfig>;
  /** Upstreams whose tokens the gateway gets by token exchange. */
  private readonly exchanged: Map<string, UpstreamConfig>;

  constructor(
    @Inject(CREDENTIAL_UPSTREAMS) configs: UpstreamConfig[],
    private readonly repository: UpstreamCredentialRepository,
    private readonly cipher: CredentialCipher,
    private readonly unitOfWork: UnitOfWork,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly exchanger: TokenExchanger,
    private readonly oauth: UpstreamOAuthService,
  ) {
    this.perUser = new Map(configs.filter((config) => config.auth.mode === 'user-secret').map((config) => [config.name, config]));
    this.connectable = new Map(
      configs
        .filter((config) => config.auth.mode === 'user-secret' || config.auth.mode === 'user-oauth')
        .map((config) => [config.name, config]),
    );
    this.exchanged = new Map(configs.filter((config) => config.auth.mode === 'token-exchange').map((config) => [config.name, config]));
  }

  async store(owner: Pick<Principal, 'userId'>, upstream: string, secret: unknown, client: Actor): Promise<ConnectionView> {
    const config = this.perUserUpstream(upstream);
    if (typeof secret !== 'string' || secret.length > MAX_SECRET_LENGTH || !SECRET_PATTERN.test(secret)) {
      throw AppException.validation([
        {
          field: 'secret',
          message: `must be 1-${MAX_SECRET_LENGTH} visible ASCII characters (spaces inside allowed, no line breaks)`,
          code: 'secret',
        },
      ]);
    }
    const sealed = this.cipher.seal(secret, owner.userId, upstream);
    const { connection } = await this.unitOfWork.run(async (tx) => {
      const outcome = await this.repository.upsert(tx, {
        id: newId('ucred'),
        userId: owner.userId,
        upstream,
        mode: 'user-secret',
        secretCiphertext: sealed,
        now: this.clock.now(),
      });
      await this.audit.record(tx, {
        action: AuditAction.UPSTREAM_CREDENTIAL_STORED,
        userId: owner.userId,
        resource: `upstream:${upstream}`,
        result: 'success',
        severity: 'info',
        ipAddress: client.ipAddress,
        userAgent: client.userAgent,
        details: { upstream, mode: 'user-secret', replaced: outcome.replaced, version: outcome.connection.version },
      });
      return outcome;
    });
    return viewOf(config, connection);
  }

  async remove(owner: Pick<Principal, 'userId'>, upstream: string, client: Actor): Promise<ConnectionView> {
    const config = this.connectable.get(upstream);
    if (!config) throw AppException.notFound(`No upstream named ${upstream} takes a credential of your own`);
    const deleted = await this.unitOfWork.run(async (tx) => {
      const deleted = await this.repository.delete(tx, owner.userId, upstream);
      if (!deleted) throw AppException.notFound(`You have no credential stored for upstream ${upstream}`);
      await this.audit.record(tx, {
        action: AuditAction.UPSTREAM_CREDENTIAL_DELETED,
        userId: owner.userId,
        resource: `upstream:${upstream}`,
        result: 'success',
        severity: 'info',
        ipAddress: client.ipAddress,
        userAgent: client.userAgent,
        details: { upstream, mode: deleted.mode, version: deleted.version },
      });
      return deleted;
    });
    // Gone here; a user-oauth connection's tokens are then revoked where they were issued.
    if (deleted.mode === 'user-oauth') await this.oauth.revokeDeleted(deleted, client);
    return viewOf(config, undefined);
  }

  /** Every upstream that takes the caller's own credential, connected or not. */
  async list(owner: Pick<Principal, 'userId'>): Promise<ConnectionView[]> {
    const stored = new Map((await this.repository.listByUser(owner.userId)).map((connection) => [connection.upstream, connection]));
    return [...this.connectable.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((config) => viewOf(config, stored.get(config.name)));
  }

  /** Who is connected to what (admins); never a secret. */
  adminList(upstream: string | undefined, limit: number): ReturnType<UpstreamCredentialRepository['listAll']> {
    return this.repository.listAll(upstream, limit);
  }

  /**
   * The caller's own credential for a tool call, or undefined when they have none or their
   * account is not active. The use is audited (and `lastUsedAt` set) before the secret is handed
   * out; a secret sealed under an earlier key is re-sealed under the current one.
   */
  async forCall(userId: string, upstream: string, idpToken?: string): Promise<UsableCredential | undefined> {
    const exchanged = this.exchanged.get(upstream);
    if (exchanged) return this.exchangedForCall(userId, exchanged, idpToken);
    if (this.oauth.handles(upstream)) return this.oauthForCall(userId, upstream);
    const row = await this.repository.findUsable(userId, upstream);
    if (!row) return undefined;
    let opened;
    try {
      opened = this.cipher.open(row.secretCiphertext, userId, upstream);
    } catch (error) {
      // Only the fact: most likely ENCRYPTION_KEY changed without the old one in ENCRYPTION_KEY_PREVIOUS.
      this.logger.error({ upstream, userId, reason: (error as Error).message }, 'An upstream credential cannot be decrypted');
      return undefined;
    }
    await this.unitOfWork.run(async (tx) => {
      if (opened.stale) await this.repository.reseal(tx, row.id, row.version, this.cipher.seal(opened.plaintext, userId, upstream));
      await this.recordUse(tx, userId, upstream, row.id, { mode: row.mode, version: row.version, resealed: opened.stale });
    });
    return { id: row.id, version: row.version, secret: opened.plaintext };
  }

  /** A stored credential goes on a call: `lastUsedAt` and the audit record, in the caller's transaction. */
  private async recordUse(
    tx: EntityManager,
    userId: string,
    upstream: string,
    id: string,
    details: Record<string, unknown>,
  ): Promise<void> {
    await this.repository.touch(tx, id, this.clock.now());
    await this.audit.record(tx, {
      action: AuditAction.UPSTREAM_CREDENTIAL_USED,
      userId,
      resource: `upstream:${upstream}`,
      result: 'success',
      severity: 'info',
      ipAddress: null,
      userAgent: null,
      details: { upstream, ...details },
    });
  }

  /** user-oauth: the user's access token (refreshed when due); the use is audited with `lastUsedAt`. */
  private async oauthForCall(userId: string, upstream: string): Promise<UsableCredential | undefined> {
    const found = await this.oauth.forCall(userId, upstream);
    if (!found) return undefined;
    const { credential, resealed } = found;
    await this.unitOfWork.run((tx) =>
      this.recordUse(tx, userId, upstream, credential.id, { mode: 'user-oauth', version: credential.version, resealed }),
    );
    return credential;
  }

  /**
   * Where a user without a usable credential is sent: for user-oauth a fresh one-time connect
   * link of the gateway's; for user-secret the configured page (or none).
   */
  async connectUrlFor(userId: string, upstream: string): Promise<string | undefined> {
    if (this.oauth.handles(upstream)) return this.oauth.connectUrl(userId, upstream);
    const auth = this.perUser.get(upstream)?.auth;
    return auth && 'connectUrl' in auth ? auth.connectUrl : undefined;
  }

  /** The upstream answered 401 to `credential`: for user-oauth, the token refreshed once (shared); undefined otherwise. */
  async renew(userId: string, upstream: string, credential: UsableCredential): Promise<UsableCredential | undefined> {
    if (!this.oauth.handles(upstream)) return undefined;
    return this.oauth.renewRefused(userId, upstream, credential);
  }

  /** Token exchange: an active user's token for the upstream (cached until it nearly expires); the use is audited. */
  private async exchangedForCall(
    userId: string,
    config: UpstreamConfig,
    idpToken: string | undefined,
  ): Promise<UsableCredential | undefined> {
    if (config.auth.mode !== 'token-exchange') return undefined;
    const user = await this.repository.activeUser(userId);
    if (!user) {
      this.exchanger.forget(userId, config.name);
      return undefined;
    }
    const { credential, exchanged } = await this.exchanger.tokenFor(user, config.name, config.auth, idpToken);
    await this.audit.recordStandalone({
      action: AuditAction.UPSTREAM_CREDENTIAL_USED,
      userId,
      resource: `upstream:${config.name}`,
      result: 'success',
      severity: 'info',
      ipAddress: null,
      userAgent: null,
      details: { upstream: config.name, mode: 'token-exchange', subject: config.auth.subjectToken, exchanged },
    });
    return credential;
  }

  /** The upstream refused the user's credential: audited so the user and admins can see why calls fail. */
  async rejected(userId: string, upstream: string, status: number | undefined): Promise<void> {
    this.exchanger.forget(userId, upstream);
    await this.audit.recordStandalone({
      action: AuditAction.UPSTREAM_CREDENTIAL_REJECTED,
      userId,
      resource: `upstream:${upstream}`,
      result: 'failure',
      severity: 'warning',
      ipAddress: null,
      userAgent: null,
      details: { upstream, status: status ?? null },
    });
  }

  private perUserUpstream(upstream: string): UpstreamConfig {
    const config = this.perUser.get(upstream);
    if (!config) throw AppException.notFound(`No upstream named ${upstream} takes a credential of your own`);
    return config;
  }
}

function viewOf(config: UpstreamConfig, connection: UpstreamConnection | undefined): ConnectionView {
  return {
    upstream: config.name,
    mode: config.auth.mode,
    connected: connection !== undefined && connection.status === 'active',
    broken: connection !== undefined && connection.status !== 'active',
    connectUrl: 'connectUrl' in config.auth ? (config.auth.connectUrl ?? null) : null,
    createdAt: connection?.createdAt ?? null,
    updatedAt: connection?.updatedAt ?? null,
    lastUsedAt: connection?.lastUsedAt ?? null,
  };
}
