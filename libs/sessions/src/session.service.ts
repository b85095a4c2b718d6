import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, AppConfig, BackgroundJob, BackgroundJobs, Clock, newId } from '@app/core';
import { returnedRows } from '@app/database';
import { SessionActivityService } from './session-activity.service';
import { ConnectionType, SessionEntity } from './session.entity';
import { SessionStateCache } from './session-state.cache';
import { SessionTerminationNotifier } from './session-termination.notifier';

export interface OpenSessionInput {
  userId: string;
  connectionType: ConnectionType;
  ipAddress: string | null;
  userAgent: string | null;
  contextId?: string | null;
}

export interface EndAllOptions {
  /** Keep this one (e.g. the caller's own session). */
  exceptSessionId?: string;
  endedBy?: string | null;
}

/** Reason recorded on sessions that went unused for longer than the idle timeout. */
export const SESSION_EXPIRED = 'expired';

/** Re-read each cached session's row at least this often (cross-replica terminations). */
const MAX_REVALIDATE_MS = 15_000;
const MAX_SWEEP_MS = 300_000;

/**
 * Sessions: one row per login, MCP connection or socket. Access tokens name their session, and
 * every request asks `isActive`, so ending a session takes effect on the very next request.
 * Activity is recorded in memory (SessionActivityService) and written in batches; every ending
 * is announced through SessionTerminationNotifier (after its transaction commits).
 *
 * `isActive` reads through SessionStateCache and uses the data source's own connection: do not
 * call it inside a transaction (the embedded database has a single connection).
 */
@Injectable()
export class SessionService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SessionService.name);
  private readonly idleMs: number;
  private readonly revalidateMs: number;
  private sweepJob: BackgroundJob | undefined;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly cache: SessionStateCache,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly activity: SessionActivityService,
    private readonly notifier: SessionTerminationNotifier,
    private readonly jobs: BackgroundJobs,
  ) {
    this.idleMs = config.auth.sessionIdleTimeoutSec * 1000;
    this.revalidateMs = Math.min(MAX_REVALIDATE_MS, Math.floor(this.idleMs / 4));
  }

  onApplicationBootstrap(): void {
    const every = Math.min(MAX_SWEEP_MS, this.idleMs);
    this.sweepJob = this.jobs.every('sessions.idle-sweep', every, () => this.expireIdle());
  }

  onApplicationShutdown(): void {
    this.sweepJob?.stop();
    this.sweepJob = undefined;
  }

  /** Opens a session inside the caller's transaction (e.g. with the login's audit record). */
  async open(manager: EntityManager, input: OpenSessionInput): Promise<SessionEntity> {
    const now = this.clock.now();
    const session = Object.assign(new SessionEntity(), {
      id: newId('ses'),
      userId: input.userId,
      contextId: input.contextId ?? null,
      status: 'active',
      connectionType: input.connectionType,
      ipAddress: input.ipAddress,
      userAgent: input.userAgent,
      startedAt: now,
      lastActivity: now,
      endedAt: null,
      endReason: null,
      endedBy: null,
      messagesReceived: 0,
      messagesSent: 0,
      toolExecutions: 0,
      errors: 0,
    } satisfies SessionEntity);
    await manager.query(
      `INSERT INTO sessions (id, user_id, context_id, status, connection_type, ip_address, user_agent, started_at, last_activity)
       VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $7)`,
      [session.id, session.userId, session.contextId, session.connectionType, session.ipAddress, session.userAgent, now],
    );
    return session;
  }

  /**
   * True while the session may be used: not ended, not idle past the timeout. Each call counts
   * as activity. Cheap: the row is read at most once per revalidation interval; ended sessions
   * are refused from memory at once.
   */
  async isActive(sessionId: string): Promise<boolean> {
    if (this.cache.isDenied(sessionId)) return false;
    const now = this.clock.nowMs();
    let entry = this.cache.get(sessionId);
    if (!entry || now - entry.checkedAtMs >= this.revalidateMs) {
      entry = await this.revalidate(sessionId, entry?.lastActivityMs ?? 0, now);
      if (!entry) return false;
    }
    if (now - entry.lastActivityMs > this.idleMs) {
      await this.expire(sessionId, now);
      return false;
    }
    if (now > entry.lastActivityMs) entry.lastActivityMs = now;
    if (this.cache.isDenied(sessionId)) return false;
    this.activity.touch(sessionId, now);
    return true;
  }

  /** Ends one session (idempotent: false when it had already ended). */
  async end(manager: EntityManager, sessionId: string, reason: string, endedBy: string | null = null): Promise<boolean> {
    await this.cache.deny(sessionId);
    const rows = returnedRows<{ id: string; user_id: string }>(
      await manager.query(
        `UPDATE sessions SET status = 'terminated', ended_at = $2, end_reason = $3, ended_by = $4
         WHERE id = $1 AND status = 'active' RETURNING id, user_id`,
        [sessionId, this.clock.now(), reason, endedBy],
      ),
    );
    this.notifier.notify(manager, rows.map((row) => ({ sessionId: row.id, userId: row.user_id, reason, endedBy })));
    return rows.length > 0;
  }

  /** Ends every active session of a user (suspension, MFA change, password change); returns how many. */
  async endAllForUser(manager: EntityManager, userId: string, reason: string, opts: EndAllOptions = {}): Promise<number> {
    const rows = returnedRows<{ id: string }>(
      await manager.query(
        `UPDATE sessions SET status = 'terminated', ended_at = $2, end_reason = $3, ended_by = $4
         WHERE user_id = $1 AND status = 'active' AND id <> $5 RETURNING id`,
        [userId, this.clock.now(), reason, opts.endedBy ?? null, opts.exceptSessionId ?? ''],
      ),
    );
    await this.cache.deny(...rows.map((row) => row.id));
    const endedBy = opts.endedBy ?? null;
    this.notifier.notify(manager, rows.map((row) => ({ sessionId: row.id, userId, reason, endedBy })));
    return rows.length;
  }

  async findById(sessionId: string, manager: EntityManager = this.dataSource.manager): Promise<SessionEntity | null> {
    return manager.findOneBy(SessionEntity, { id: sessionId });
  }

  /** Marks every session idle past the timeout as expired (run periodically; also callable). */
  async expireIdle(): Promise<number> {
    // This process's recent activity first, so the sweep judges by it.
    await this.activity.flush();
    const now = this.clock.nowMs();
    const rows = returnedRows<{ id: string; user_id: string }>(
      await this.dataSource.query(
        `UPDATE sessions SET status = 'terminated', ended_at = $2, end_reason = $3
         WHERE status = 'active' AND last_activity < $1 RETURNING id, user_id`,
        [new Date(now - this.idleMs), new Date(now), SESSION_EXPIRED],
      ),
    );
    // Another replica may hold activity it has not flushed yet (at most SESSION_FLUSH_MS old); a
    // session it still uses is re-read as terminated and refused, which errs on the safe side for
    // sessions near the timeout.
    await this.cache.deny(...rows.map((row) => row.id));
    this.notifier.notify(null, rows.map((row) => ({ sessionId: row.id, userId: row.user_id, reason: SESSION_EXPIRED, endedBy: null })));
    return rows.length;
  }

  private async revalidate(sessionId: string, knownActivityMs: number, now: number) {
    const rows: Array<{ user_id: string; status: string; last_activity: Date }> = await this.dataSource.query(
      `SELECT user_id, status, last_activity FROM sessions WHERE id = $1`,
      [sessionId],
    );
    const row = rows[0];
    if (!row || this.cache.isDenied(sessionId)) return undefined;
    if (row.status !== 'active') {
      await this.cache.deny(sessionId);
      return undefined;
    }
    // The row lags this process's activity by up to one flush interval; the activity batch writes it.
    const unflushedMs = this.activity.pending(sessionId)?.lastActivityMs ?? 0;
    const lastActivityMs = Math.max(new Date(row.last_activity).getTime(), knownActivityMs, unflushedMs);
    const entry = { userId: row.user_id, lastActivityMs, checkedAtMs: now };
    this.cache.set(sessionId, entry);
    return entry;
  }

  private async expire(sessionId: string, now: number): Promise<void> {
    await this.cache.deny(sessionId);
    const rows = returnedRows<{ id: string; user_id: string }>(
      await this.dataSource.query(
        `UPDATE sessions SET status = 'terminated', ended_at = $2, end_reason = $3 WHERE id = $1 AND status = 'active'
         RETURNING id, user_id`,
        [sessionId, new Date(now), SESSION_EXPIRED],
      ),
    );
    this.notifier.notify(null, rows.map((row) => ({ sessionId: row.id, userId: row.user_id, reason: SESSION_EXPIRED, endedBy: null })));
  }
}
