import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig, BackgroundJob, BackgroundJobs, Clock, newId } from '@app/core';
import type { Transaction } from '@app/database';
import { SessionActivityService } from './session-activity.service';
import { ConnectionType, EndedSession, Session, SessionRepository } from './session.repository';
import { CachedSession, SessionStateCache } from './session-state.cache';
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
    private readonly repository: SessionRepository,
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
  async open(tx: Transaction, input: OpenSessionInput): Promise<Session> {
    const now = this.clock.now();
    const session: Session = {
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
    };
    await this.repository.insert(tx, session);
    return session;
  }

  /**
   * True while the session may be used: not ended, not idle past the timeout. Each call counts
   * as activity. Cheap: the row is read at most once per revalidation interval; ended sessions
   * are refused from memory at once. Answered at once (no promise) when memory decides, which is
   * every request between revalidations; await it either way.
   */
  isActive(sessionId: string): boolean | Promise<boolean> {
    if (this.cache.isDenied(sessionId)) return false;
    const now = this.clock.nowMs();
    const entry = this.cache.get(sessionId);
    if (!entry || now - entry.checkedAtMs >= this.revalidateMs) {
      return this.revalidate(sessionId, entry?.lastActivityMs ?? 0, now).then((read) =>
        read ? this.stillActive(sessionId, read, now) : false,
      );
    }
    return this.stillActive(sessionId, entry, now);
  }

  /** isActive once the session's entry is current: idle past the timeout ends it; else a use. */
  private stillActive(sessionId: string, entry: CachedSession, now: number): boolean | Promise<boolean> {
    if (now - entry.lastActivityMs > this.idleMs) return this.expire(sessionId, now).then(() => false);
    if (now > entry.lastActivityMs) entry.lastActivityMs = now;
    if (this.cache.isDenied(sessionId)) return false;
    this.activity.touch(sessionId, now);
    return true;
  }

  /** Ends one session (idempotent: false when it had already ended). */
  async end(tx: Transaction, sessionId: string, reason: string, endedBy: string | null = null): Promise<boolean> {
    await this.cache.deny(sessionId);
    const ended = await this.repository.end(tx, sessionId, this.clock.now(), reason, endedBy);
    this.notifier.notify(tx, eventsOf(ended, reason, endedBy));
    return ended.length > 0;
  }

  /** Ends every active session of a user (suspension, MFA change, password change); returns how many. */
  async endAllForUser(tx: Transaction, userId: string, reason: string, opts: EndAllOptions = {}): Promise<number> {
    const endedBy = opts.endedBy ?? null;
    const ended = await this.repository.endAllForUser(tx, userId, this.clock.now(), reason, endedBy, opts.exceptSessionId ?? null);
    await this.cache.deny(...ended.map((session) => session.id));
    this.notifier.notify(tx, eventsOf(ended, reason, endedBy));
    return ended.length;
  }

  findById(sessionId: string, tx?: Transaction): Promise<Session | null> {
    return this.repository.findById(sessionId, tx);
  }

  /**
   * True when the session is active, holding a share lock on its row until the caller's
   * transaction ends (it cannot be ended meanwhile): for changes valid only in a live session.
   */
  holdActive(tx: Transaction, sessionId: string): Promise<boolean> {
    return this.repository.holdActive(tx, sessionId);
  }

  /** Marks every session idle past the timeout as expired (run periodically; also callable). */
  async expireIdle(): Promise<number> {
    // This process's recent activity first, so the sweep judges by it.
    await this.activity.flush();
    const now = this.clock.nowMs();
    const ended = await this.repository.endIdle(new Date(now - this.idleMs), new Date(now), SESSION_EXPIRED);
    // Another replica may hold activity it has not flushed yet (at most SESSION_FLUSH_MS old); a
    // session it still uses is re-read as terminated and refused, which errs on the safe side for
    // sessions near the timeout.
    await this.cache.deny(...ended.map((session) => session.id));
    this.notifier.notify(null, eventsOf(ended, SESSION_EXPIRED, null));
    return ended.length;
  }

  private async revalidate(sessionId: string, knownActivityMs: number, now: number) {
    const row = await this.repository.stateOf(sessionId);
    if (!row || this.cache.isDenied(sessionId)) return undefined;
    if (row.status !== 'active') {
      await this.cache.deny(sessionId);
      return undefined;
    }
    // The row lags this process's activity by up to one flush interval; the activity batch writes it.
    const unflushedMs = this.activity.pending(sessionId)?.lastActivityMs ?? 0;
    const lastActivityMs = Math.max(row.lastActivity.getTime(), knownActivityMs, unflushedMs);
    const entry = { userId: row.userId, lastActivityMs, checkedAtMs: now };
    this.cache.set(sessionId, entry);
    return entry;
  }

  private async expire(sessionId: string, now: number): Promise<void> {
    await this.cache.deny(sessionId);
    const ended = await this.repository.end(null, sessionId, new Date(now), SESSION_EXPIRED, null);
    this.notifier.notify(null, eventsOf(ended, SESSION_EXPIRED, null));
  }
}

function eventsOf(ended: EndedSession[], reason: string, endedBy: string | null) {
  return ended.map((session) => ({ sessionId: session.id, userId: session.userId, reason, endedBy }));
}
