import { Injectable, Logger } from '@nestjs/common';
import { AuditAction, AuditService } from '@app/audit';
import { Actor, apiKeyPermissions, AppException, Clock, ErrorDetail, newId, Principal, resolvePermissions } from '@app/core';
import { UnitOfWork } from '@app/database';
import { SessionService } from '@app/sessions';
import { UsersService } from '@app/users';
import { ApiKey, ApiKeyRepository } from './api-key.repository';
import { ApiKeyView, apiKeyViewOf } from './api-key.view';
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
  row: ApiKey;
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
    private readonly unitOfWork: UnitOfWork,
    private readonly repository: ApiKeyRepository,
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
      const contextOwner = await this.repository.contextOwner(input.contextId);
      // Own contexts only: a bound key never holds admin:* permissions, so it could not reach another's.
      if (contextOwner !== owner.userId) {
        problems.push({ field: 'contextId', message: 'must be one of your contexts', code: 'context' });
      }
    }
    if (problems.length > 0) throw AppException.validation(problems);

    const key = generateApiKey();
    const id = newId('key');
    const row = await this.unitOfWork.run(async (tx) => {
      if ((await this.repository.countUnrevoked(tx, owner.userId)) >= MAX_KEYS_PER_USER) {
        throw AppException.conflict(`At most ${MAX_KEYS_PER_USER} API keys per user; revoke one first`);
      }
      const inserted = await this.repository.insert(tx, {
        id,
        userId: owner.userId,
        name: input.name,
        keyHash: hashApiKey(key),
        keyPrefix: displayPrefix(key),
        permissions,
        contextId: input.contextId ?? null,
        expiresAt,
        createdAt: this.clock.now(),
      });
      await this.audit.record(tx, {
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
    const rows = await this.repository.listByUser(owner.userId);
    const nowMs = this.clock.nowMs();
    return rows.map((row) => apiKeyViewOf(row, nowMs));
  }

  /** Revokes one of the caller's keys (idempotent); ends its session so live connections close. */
  async revoke(owner: Principal, id: string, client: Actor): Promise<ApiKeyView> {
    refuseKeyHolders(owner);
    const row = await this.unitOfWork.run(async (tx) => {
      const current = await this.repository.lockById(tx, id);
      if (!current || current.userId !== owner.userId) throw AppException.notFound('API key not found');
      if (current.revokedAt) return current;
      const revoked = await this.repository.revoke(tx, id, this.clock.now(), owner.userId);
      if (current.currentSessionId) await this.sessions.end(tx, current.currentSessionId, API_KEY_REVOKED, owner.userId);
      await this.audit.record(tx, {
        action: AuditAction.AUTH_APIKEY_REVOKED,
        userId: owner.userId,
        resource: `apikey:${id}`,
        result: 'success',
        severity: 'info',
        ipAddress: client.ipAddress,
        userAgent: client.userAgent,
        details: { name: current.name, sessionId: current.currentSessionId },
      });
      return revoked;
    });
    this.cache.delete(row.keyHash);
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
    if (!row || !sameHash(row.keyHash, hash) || row.revokedAt) return null;
    if (row.expiresAt && row.expiresAt.getTime() <= this.clock.nowMs()) return null;
    const user = await this.users.accessState(row.userId);
    if (!user || user.status !== 'active') return null;
    const sessionId = await this.sessionFor(row, client);
    if (!sessionId) return null;
    const permissions = apiKeyPermissions(resolvePermissions(user.roles, user.permissions), row.permissions, row.contextId !== null);
    return {
      userId: user.id,
      email: user.email,
      sessionId,
      roles: [...user.roles],
      permissions,
      via: 'api_key',
      apiKeyId: row.id,
      ...(row.contextId ? { contextId: row.contextId } : {}),
    };
  }

  private async lookup(hash: string): Promise<ApiKey | undefined> {
    const now = this.clock.nowMs();
    const cached = this.cache.get(hash);
    if (cached && now - cached.checkedAtMs < RECHECK_MS) return cached.row;
    const row = await this.repository.findByHash(hash);
    if (!row) {
      this.cache.delete(hash);
      return undefined;
    }
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(hash, { row, checkedAtMs: now });
    return row;
  }

  /** The key's current session while it is active, else a newly opened one. */
  private async sessionFor(row: ApiKey, client: Actor): Promise<string | null> {
    const current = row.currentSessionId;
    if (current && (await this.sessions.isActive(current))) return current;
    let pending = this.opening.get(row.id);
    if (!pending) {
      pending = this.openSession(row, current, client).finally(() => this.opening.delete(row.id));
      this.opening.set(row.id, pending);
    }
    return pending;
  }

  private async openSession(row: ApiKey, stale: string | null, client: Actor): Promise<string | null> {
    const opened = await this.unitOfWork.run(async (tx) => {
      const locked = await this.repository.lockById(tx, row.id);
      if (!locked || locked.revokedAt) return null;
      // Another replica replaced the ended session meanwhile: use its one.
      if (locked.currentSessionId && locked.currentSessionId !== stale) return { id: locked.currentSessionId, opened: false };
      const session = await this.sessions.open(tx, {
        userId: locked.userId,
        connectionType: 'http',
        ipAddress: client.ipAddress,
        userAgent: client.userAgent,
        contextId: locked.contextId,
      });
      await this.repository.attachSession(tx, row.id, session.id, this.clock.now());
      await this.audit.record(tx, {
        action: AuditAction.AUTH_APIKEY_SESSION_OPENED,
        userId: locked.userId,
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
      this.cache.delete(row.keyHash);
      return null;
    }
    const cached = this.cache.get(row.keyHash);
    if (cached) cached.row = { ...cached.row, currentSessionId: opened.id };
    if (opened.opened) this.logger.log({ apiKeyId: row.id, sessionId: opened.id }, 'API key session opened');
    return opened.id;
  }
}

/** Keys are managed with a login, never with a key: a leaked key must not be able to mint more. */
function refuseKeyHolders(principal: Principal): void {
  if (principal.via === 'api_key') throw AppException.forbidden('API keys are managed with a user login, not with an API key');
}
