import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig, BackgroundJob, BackgroundJobs, Clock } from '@app/core';
import { SessionRepository } from './session.repository';

/** Increments to a session's counters. */
export interface SessionCounts {
  received?: number;
  sent?: number;
  toolExecutions?: number;
  errors?: number;
}

/** What this process has seen of a session and not yet written. */
export interface PendingActivity {
  received: number;
  sent: number;
  toolExecutions: number;
  errors: number;
  /** Latest activity seen (ms since the epoch), 0 when only counters moved. */
  lastActivityMs: number;
}

/** Rows per UPDATE statement: keeps parameters and statement size modest under a burst. */
const FLUSH_CHUNK = 1_000;
/** A burst of this many distinct sessions flushes at once instead of waiting for the timer. */
const EAGER_FLUSH_SESSIONS = 10_000;

/**
 * Session activity and counters without a write per request: deltas add up in memory and go to
 * the database in one batched UPDATE every SESSION_FLUSH_MS, before idle sweeps, and at
 * shutdown. Readers add `pending(id)` to the row for live figures.
 *
 * Only this process's deltas are held here; each replica flushes its own, and the UPDATE adds
 * (never overwrites), so replicas and the tool pipeline's direct increments compose.
 */
@Injectable()
export class SessionActivityService implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger(SessionActivityService.name);
  private readonly flushMs: number;
  private pendingDeltas = new Map<string, PendingActivity>();
  /** The batch being written right now (still counted by `pending` until it commits). */
  private inFlight = new Map<string, PendingActivity>();
  private flushing: Promise<void> | undefined;
  private timer: BackgroundJob | undefined;

  constructor(
    private readonly repository: SessionRepository,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly jobs: BackgroundJobs = new BackgroundJobs(),
  ) {
    this.flushMs = config.auth.sessionFlushMs;
  }

  onApplicationBootstrap(): void {
    this.timer = this.jobs.every('sessions.activity-flush', this.flushMs, () => this.flush());
  }

  /** The database is still open here (it closes in the shutdown phase); the HTTP drain flushes again after it. */
  async beforeApplicationShutdown(): Promise<void> {
    this.timer?.stop();
    this.timer = undefined;
    await this.flush();
  }

  /** Last chance for anything counted after the drain; usually the database is gone by now. */
  async onApplicationShutdown(): Promise<void> {
    if (this.pendingDeltas.size === 0) return;
    if (this.repository.connected) {
      await this.flush();
      return;
    }
    this.logger.warn({ sessions: this.pendingDeltas.size }, 'Session activity counted after the database closed was not saved');
  }

  /** Records activity on a session (defaults to now). */
  touch(sessionId: string, atMs: number = this.clock.nowMs()): void {
    const delta = this.deltaFor(sessionId);
    if (atMs > delta.lastActivityMs) delta.lastActivityMs = atMs;
  }

  /** Adds to a session's counters. */
  count(sessionId: string, counts: SessionCounts): void {
    const delta = this.deltaFor(sessionId);
    delta.received += counts.received ?? 0;
    delta.sent += counts.sent ?? 0;
    delta.toolExecutions += counts.toolExecutions ?? 0;
    delta.errors += counts.errors ?? 0;
  }

  /** What is held in memory for the session (unwritten or being written), or undefined. */
  pending(sessionId: string): PendingActivity | undefined {
    const waiting = this.pendingDeltas.get(sessionId);
    const writing = this.inFlight.get(sessionId);
    if (!waiting && !writing) return undefined;
    return merge({ ...(writing ?? empty()) }, waiting ?? empty());
  }

  /**
   * Writes everything counted so far. Concurrent callers share the write in progress and then
   * write what arrived meanwhile, so on return every delta recorded before the call is saved
   * (or, if the database refused, kept for the next attempt).
   */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pendingDeltas.size === 0) return;
    this.flushing = this.writeBatch().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  private async writeBatch(): Promise<void> {
    this.inFlight = this.pendingDeltas;
    this.pendingDeltas = new Map();
    const entries = [...this.inFlight];
    let written = 0;
    try {
      for (; written < entries.length; written += FLUSH_CHUNK) {
        await this.update(entries.slice(written, written + FLUSH_CHUNK));
      }
    } catch (error) {
      // Keep what was not written for the next attempt.
      const unwritten = entries.slice(written);
      for (const [id, delta] of unwritten) merge(this.deltaFor(id), delta);
      this.logger.warn({ err: error, sessions: unwritten.length }, 'Writing session activity failed; will retry');
    } finally {
      this.inFlight = new Map();
    }
  }

  private async update(entries: Array<[string, PendingActivity]>): Promise<void> {
    await this.repository.addActivity(
      entries.map(([id, d]) => ({
        id,
        received: d.received,
        sent: d.sent,
        toolExecutions: d.toolExecutions,
        errors: d.errors,
        lastActivity: d.lastActivityMs > 0 ? new Date(d.lastActivityMs) : null,
      })),
    );
  }

  private deltaFor(sessionId: string): PendingActivity {
    let delta = this.pendingDeltas.get(sessionId);
    if (!delta) {
      delta = empty();
      this.pendingDeltas.set(sessionId, delta);
      if (this.pendingDeltas.size >= EAGER_FLUSH_SESSIONS && !this.flushing) void this.flush();
    }
    return delta;
  }
}

function empty(): PendingActivity {
  return { received: 0, sent: 0, toolExecutions: 0, errors: 0, lastActivityMs: 0 };
}

function merge(into: PendingActivity, from: PendingActivity): PendingActivity {
  into.received += from.received;
  into.sent += from.sent;
  into.toolExecutions += from.toolExecutions;
  into.errors += from.errors;
  into.lastActivityMs = Math.max(into.lastActivityMs, from.lastActivityMs);
  return into;
}
