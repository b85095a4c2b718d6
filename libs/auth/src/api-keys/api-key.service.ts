import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AuditAction, AuditService } from '@app/audit';
import { Actor, apiKeyPermissions, AppException, Clock, ErrorDetail, newId, Principal, resolvePermissions } from '@app/core';
import { returnedRows } from '@app/database';
import { SessionService } from '@app/sessions';
import { UsersService } from '@app/users';
import { API_KEY_COLUMNS, ApiKeyRow, ApiKeyView, apiKeyViewOf } from './api-key.row';
import { displayPrefix, generateApiKey, hashApiKey, isWellFormedApiKey, sameHash } from './api-key-secret';

export interface NewApiKey {
  name: string;
  expiresAt?: string;
  contextId?: string;
  permissions?: string[];
}

/** Reason recorded on a key's session when the key is revoked. */
export const API_KEY_REVOKED = 'api_key_revoked';

/** Each replica re-reads a key at least this often (revocations made by another replica). */
const RECHECK_MS = 15_000;
const MAX_CACHED = 10_000;
const MAX_KEYS_PER_USER = 100;

interface CachedKey {
  row: ApiKeyRow;
  checkedAtMs: number;
}

/**
 * Agent API keys: create (the key is returned once), list, revoke, and authenticate a request
 * that presents one. A key's requests run as its owner with the key's permissions intersected
 * with the owner's current ones, and count in one session per key "use window": the key's
 * current session while it is active, a new one (opened and audited here) once it has ended
 * (idle expiry, termination). Revoking a key ends that session at once.
 */
@Injectable()
export class ApiKeyService {
  private readonly logger = new Logger(ApiKeyService.name);
  private readonly cache = new Map<string, CachedKey>();
  /** One session opening per key at a time (concurrent first requests share it). */
  private readonly opening = new Map<string, Promise<string | null>>();

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly sessions: SessionService,
    private readonly users: UsersService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  async create(owner: Principal, input: NewApiKey, client: Actor): Promise<{ key: string; view: ApiKeyView }> {
    refuseKeyHolders(owner);
    const problems: ErrorDetail[] = [];
    const nowMs = this.clock.nowMs();
    let expiresAt: Date | null = null;
    if (input.expiresAt !== undefined) {
      expiresAt = new Date(input.expiresAt);
      if (Number.isNaN(expiresAt.getTime()) || expiresAt.getTime() <= nowMs) {
        problems.push({ field: 'expiresAt', message: 'must be a date-time in the future', code: 'future' });
      }
    }
    let permissions: string[] | null = null;
    if (input.permissions !== undefined) {
      permissions = [...new Set(input.permissions)].sort();
      const notHeld = permissions.filter((permission) => !owner.permissions.includes(permission));
      if (notHeld.length > 0) {
        problems.push({ field: 'permissions', message: `not among your permissions: ${notHeld.join(', ')}`, code: 'subset' });
      }
    }
    if (input.contextId !== undefined) {
      const [context]: Array<{ user_id: string }> = await this.dataSource.query(`SELECT user_id FROM contexts WHERE id = $1`, [input.contextId]);
      // Own contexts only: a bound key never holds admin:* permissions, so it could not reach another's.
      if (!context || context.user_id !== owner.userId) {
        problems.push({ field: 'contextId', message: 'must be one of your contexts', code: 'context' });
      }
    }
    if (problems.length > 0) throw AppException.validation(problems);

    const key = generateApiKey();
    const id = newId('key');
    const row = await this.dataSource.transaction(async (manager) => {
      const [{ count }]: Array<{ count: number }> = await manager.query(
        `SELECT count(*)::int AS count FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL`,
        [owner.userId],
      );
      if (count >= MAX_KEYS_PER_USER) {
        throw AppException.conflict(`At most ${MAX_KEYS_PER_USER} API keys per user; revoke one first`);
      }
      const [inserted] = returnedRows<ApiKeyRow>(
        await manager.query(
          `INSERT INTO api_keys (id, user_id, name, key_hash, key_prefix, permissions, context_id, expires_at, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${API_KEY_COLUMNS}`,
          [id, owner.userId, input.name, hashApiKey(key), displayPrefix(key), permissions, input.contextId ?? null, expiresAt, this.clock.now()],
        ),
      );
      await this.audit.record(manager, {
        action: AuditAction.AUTH_APIKEY_CREATED,
        userId: owner.userId,
        resource: `apikey:${id}`,
        result: 'success',
        severity: 'info',
        ipAddress: client.ipAddress,
        userAgent: client.userAgent,
        details: { name: input.name, permissions, contextId: input.contextId ?? null, expiresAt: expiresAt?.toISOString() ?? null },
      });
      return inserted;
    });
    return { key, view: apiKeyViewOf(row, nowMs) };
  }

  async list(owner: Principal): Promise<ApiKeyView[]> {
    const rows: ApiKeyRow[] = await this.dataSource.query(
      `SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id`,
      [owner.userId],
    );
    const nowMs = this.clock.nowMs();
    return rows.map((row) => apiKeyViewOf(row, nowMs));
  }

  /** Revokes one of the caller's keys (idempotent); ends its session so live connections close. */
  async revoke(owner: Principal, id: string, client: Actor): Promise<ApiKeyView> {
    refuseKeyHolders(owner);
    const row = await this.dataSource.transaction(async (manager) => {
      const [current]: ApiKeyRow[] = await manager.query(`SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE id = $1 FOR UPDATE`, [id]);
      if (!current || current.user_id !== owner.userId) throw AppException.notFound('API key not found');
      if (current.revoked_at) return current;
      const [revoked] = returnedRows<ApiKeyRow>(
        await manager.query(
          `UPDATE api_keys SET revoked_at = $2, revoked_by = $3, current_session_id = NULL WHERE id = $1 RETURNING ${API_KEY_COLUMNS}`,
          [id, this.clock.now(), owner.userId],
        ),
      );
      if (current.current_session_id) await this.sessions.end(manager, current.current_session_id, API_KEY_REVOKED, owner.userId);
      await this.audit.record(manager, {
        action: AuditAction.AUTH_APIKEY_REVOKED,
        userId: owner.userId,
        resource: `apikey:${id}`,
        result: 'success',
        severity: 'info',
        ipAddress: client.ipAddress,
        userAgent: client.userAgent,
        details: { name: current.name, sessionId: current.current_session_id },
      });
      return revoked;
    });
    this.cache.delete(row.key_hash);
    return apiKeyViewOf(row, this.clock.nowMs());
  }

  /**
   * The principal of a request presenting `key`, or null for anything that must not work
   * (malformed, unknown, revoked, expired, owner not active). Never throws on bad input.
   */
  async authenticate(key: string, client: Actor): Promise<Principal | null> {
    if (!isWellFormedApiKey(key)) return null;
    const hash = hashApiKey(key);
    const row = await this.lookup(hash);
    if (!row || !sameHash(row.key_hash, hash) || row.revoked_at) return null;
    if (row.expires_at && new Date(row.expires_at).getTime() <= this.clock.nowMs()) return null;
    const user = await this.users.accessState(row.user_id);
    if (!user || user.status !== 'active') return null;
    const sessionId = await this.sessionFor(row, client);
    if (!sessionId) return null;
    const permissions = apiKeyPermissions(resolvePermissions(user.roles, user.permissions), row.permissions, row.context_id !== null);
    return {
      userId: user.id,
      email: user.email,
      sessionId,
      roles: [...user.roles],
      permissions,
      via: 'api_key',
      apiKeyId: row.id,
      ...(row.context_id ? { contextId: row.context_id } : {}),
    };
  }

  private async lookup(hash: string): Promise<ApiKeyRow | undefined> {
    const now = this.clock.nowMs();
    const cached = this.cache.get(hash);
    if (cached && now - cached.checkedAtMs < RECHECK_MS) return cached.row;
    const [row]: ApiKeyRow[] = await this.dataSource.query(`SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1`, [hash]);
    if (!row) {
      this.cache.delete(hash);
      return undefined;
    }
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(hash, { row, checkedAtMs: now });
    return row;
  }

  /** The key's current session while it is active, else a newly opened one. */
  private async sessionFor(row: ApiKeyRow, client: Actor): Promise<string | null> {
    const current = row.current_session_id;
    if (current && (await this.sessions.isActive(current))) return current;
    let pending = this.opening.get(row.id);
    if (!pending) {
      pending = this.openSession(row, current, client).finally(() => this.opening.delete(row.id));
      this.opening.set(row.id, pending);
    }
    return pending;
  }

  private async openSession(row: ApiKeyRow, stale: string | null, client: Actor): Promise<string | null> {
    const opened = await this.dataSource.transaction(async (manager) => {
      const [locked]: ApiKeyRow[] = await manager.query(`SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE id = $1 FOR UPDATE`, [row.id]);
      if (!locked || locked.revoked_at) return null;
      // Another replica replaced the ended session meanwhile: use its one.
      if (locked.current_session_id && locked.current_session_id !== stale) return { id: locked.current_session_id, opened: false };
      const session = await this.sessions.open(manager, {
        userId: locked.user_id,
        connectionType: 'http',
        ipAddress: client.ipAddress,
        userAgent: client.userAgent,
        contextId: locked.context_id,
      });
      await manager.query(`UPDATE api_keys SET current_session_id = $2, last_used_at = $3 WHERE id = $1`, [row.id, session.id, this.clock.now()]);
      await this.audit.record(manager, {
        action: AuditAction.AUTH_APIKEY_SESSION_OPENED,
        userId: locked.user_id,
        resource: `apikey:${row.id}`,
        result: 'success',
        severity: 'info',
        ipAddress: client.ipAddress,
        userAgent: client.userAgent,
        details: { sessionId: session.id, previousSessionId: stale },
      });
      return { id: session.id, opened: true };
    });
    if (!opened) {
      this.cache.delete(row.key_hash);
      return null;
    }
    const cached = this.cache.get(row.key_hash);
    if (cached) cached.row = { ...cached.row, current_session_id: opened.id };
    if (opened.opened) this.logger.log({ apiKeyId: row.id, sessionId: opened.id }, 'API key session opened');
    return opened.id;
  }
}

/** Keys are managed with a login, never with a key: a leaked key must not be able to mint more. */
function refuseKeyHolders(principal: Principal): void {
  if (principal.via === 'api_key') throw AppException.forbidden('API keys are managed with a user login, not with an API key');
}
