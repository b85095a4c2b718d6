import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { BackgroundJob, BackgroundJobs } from '@app/core';
import type { ThrottlerStorage } from '@nestjs/throttler';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** One tracker's budget: the expiry times of its hits inside the window, oldest first. */
interface Budget {
  expiries: number[];
  /** Index of the oldest live entry in `expiries` (the ones before it have expired). */
  head: number;
  /** When the current window ends (what X-RateLimit-Reset counts down to). */
  windowEndsAt: number;
  blockedUntil: number;
}

const SWEEP_INTERVAL_MS = 60_000;

/**
 * The same sliding-window rule as @nestjs/throttler's in-memory storage (a hit counts until `ttl`
 * after it happened; over `limit` blocks for `blockDuration`), in constant time per hit. The
 * library's storage copies every tracker's whole hit list on each request, so one busy user at a
 * high limit made every request slower than the last (throughput kept falling for as long as the
 * load lasted). Hits expire from the front of a queue instead, no timer per hit, one unref'd sweep.
 */
@Injectable()
export class InMemoryThrottlerStorage implements ThrottlerStorage, OnApplicationShutdown {
  private readonly budgets = new Map<string, Budget>();
  private sweeper: BackgroundJob | undefined;

  constructor(private readonly jobs: BackgroundJobs = new BackgroundJobs()) {}

  async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    return this.incrementNow(key, ttl, limit, blockDuration, throttlerName);
  }

  /** `increment` without the promise: the count is in this process, so the answer is at hand (RequestRateLimiter). */
  incrementNow(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): ThrottlerStorageRecord {
    return this.hit(`${throttlerName}:${key}`, ttl, limit, blockDuration, Date.now());
  }

  /** Synchronous core of `increment` (exported for the unit test's clock). */
  hit(id: string, ttl: number, limit: number, blockDuration: number, now: number): ThrottlerStorageRecord {
    this.sweeper ??= this.startSweep();
    let budget = this.budgets.get(id);
    if (!budget) {
      budget = { expiries: [], head: 0, windowEndsAt: now + ttl, blockedUntil: 0 };
      this.budgets.set(id, budget);
    }
    expire(budget, now);
    if (budget.windowEndsAt <= now) budget.windowEndsAt = now + ttl;
    const timeToExpire = seconds(budget.windowEndsAt - now);

    if (budget.blockedUntil > now) {
      return { totalHits: live(budget) + 1, timeToExpire, isBlocked: true, timeToBlockExpire: seconds(budget.blockedUntil - now) };
    }
    if (budget.blockedUntil !== 0) {
      // The block is over: the budget starts afresh, as the library's storage does.
      budget.blockedUntil = 0;
      budget.expiries = [];
      budget.head = 0;
    }
    budget.expiries.push(now + ttl);
    const totalHits = live(budget);
    if (totalHits > limit) {
      budget.blockedUntil = now + blockDuration;
      return { totalHits, timeToExpire, isBlocked: true, timeToBlockExpire: seconds(blockDuration) };
    }
    return { totalHits, timeToExpire, isBlocked: false, timeToBlockExpire: 0 };
  }

  onApplicationShutdown(): void {
    this.sweeper?.stop();
    this.sweeper = undefined;
    this.budgets.clear();
  }

  /** Forgets trackers with no live hit and no block, so memory follows the active clients. */
  sweep(now = Date.now()): void {
    for (const [id, budget] of this.budgets) {
      expire(budget, now);
      if (live(budget) === 0 && budget.blockedUntil <= now) this.budgets.delete(id);
    }
  }

  /** Trackers currently remembered (for tests and the soak). */
  get size(): number {
    return this.budgets.size;
  }

  private startSweep(): BackgroundJob {
    return this.jobs.every('rate-limit.sweep', SWEEP_INTERVAL_MS, () => this.sweep());
  }
}

function expire(budget: Budget, now: number): void {
  const { expiries } = budget;
  while (budget.head < expiries.length && expiries[budget.head] <= now) budget.head += 1;
  // Compact once the dead prefix is the larger half: amortised constant time per hit.
  if (budget.head > 32 && budget.head * 2 >= expiries.length) {
    budget.expiries = expiries.slice(budget.head);
    budget.head = 0;
  }
}

function live(budget: Budget): number {
  return budget.expiries.length - budget.head;
}

function seconds(ms: number): number {
  return Math.max(0, Math.ceil(ms / 1000));
}
