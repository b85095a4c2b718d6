import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { safeErrorMessage } from '../logging/error-serializer';

export interface BackgroundJobOptions {
  /** Let the process exit while the job is scheduled (default true: no job keeps a process alive). */
  unref?: boolean;
}

/** What GET /admin/health (and a debugger) can see of a job. */
export interface BackgroundJobInfo {
  name: string;
  intervalMs: number;
  runs: number;
  /** Ticks skipped because the previous run had not finished. */
  skipped: number;
  running: boolean;
  lastRunAt: string | null;
  lastError: string | null;
}

/** A scheduled job: stop it when its owner stops (stopping twice is harmless). */
export interface BackgroundJob {
  readonly name: string;
  stop(): void;
}

interface JobState extends BackgroundJobInfo {
  timer: NodeJS.Timeout;
  run: () => unknown;
}

/**
 * Every periodic job of the process, declared in one place: `every(name, ms, fn)` instead of a
 * hand-rolled setInterval. A job is named, listed (with its last run and last error), never runs
 * twice at once (a tick that finds the previous async run in flight is skipped), unref'd unless
 * told otherwise, and stopped at application shutdown if its owner did not stop it before.
 * Owners that must stop a job at a precise point (before a final flush or drain) call `stop()`.
 */
@Injectable()
export class BackgroundJobs implements OnApplicationShutdown {
  private readonly logger = new Logger(BackgroundJobs.name);
  private readonly jobs = new Map<string, JobState>();

  every(name: string, intervalMs: number, run: () => unknown, options: BackgroundJobOptions = {}): BackgroundJob {
    if (!(intervalMs > 0)) throw new Error(`Background job ${name}: the interval must be positive, not ${intervalMs}`);
    if (this.jobs.has(name)) throw new Error(`Background job ${name} is already scheduled; stop it first`);
    const state: JobState = {
      name,
      intervalMs,
      runs: 0,
      skipped: 0,
      running: false,
      lastRunAt: null,
      lastError: null,
      run,
      timer: setInterval(() => this.tick(state), intervalMs),
    };
    if (options.unref !== false) state.timer.unref();
    this.jobs.set(name, state);
    return {
      name,
      stop: () => {
        clearInterval(state.timer);
        if (this.jobs.get(name) === state) this.jobs.delete(name);
      },
    };
  }

  /** The scheduled jobs, by name. */
  list(): BackgroundJobInfo[] {
    return [...this.jobs.values()]
      .map(({ name, intervalMs, runs, skipped, running, lastRunAt, lastError }) => ({
        name,
        intervalMs,
        runs,
        skipped,
        running,
        lastRunAt,
        lastError,
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  stopAll(): void {
    for (const state of this.jobs.values()) clearInterval(state.timer);
    this.jobs.clear();
  }

  onApplicationShutdown(): void {
    this.stopAll();
  }

  private tick(state: JobState): void {
    if (state.running) {
      state.skipped += 1;
      return;
    }
    state.runs += 1;
    state.lastRunAt = new Date().toISOString();
    let outcome: unknown;
    try {
      outcome = state.run();
    } catch (error) {
      this.failed(state, error);
      return;
    }
    if (!isPromiseLike(outcome)) {
      state.lastError = null;
      return;
    }
    state.running = true;
    outcome.then(
      () => {
        state.running = false;
        state.lastError = null;
      },
      (error: unknown) => {
        state.running = false;
        this.failed(state, error);
      },
    );
  }

  private failed(state: JobState, error: unknown): void {
    state.lastError = safeErrorMessage(error);
    this.logger.warn({ err: error, job: state.name }, `Background job ${state.name} failed`);
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
