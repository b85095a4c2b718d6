import { Injectable } from '@nestjs/common';
import { RateLimitDecision, RateLimitStore } from './rate-limit-store';

interface Window {
  startMs: number;
  windowMs: number;
  count: number;
}

/** Sweep ended windows once the map has grown by this many keys, so idle keys do not pile up. */
const SWEEP_EVERY = 10_000;

/** Counters in this process's memory: exact for one replica; replicas each keep their own. */
@Injectable()
export class InMemoryRateLimitStore extends RateLimitStore {
  private readonly windows = new Map<string, Window>();
  private nextSweepAt = SWEEP_EVERY;

  async hit(key: string, limit: number, windowMs: number, nowMs: number): Promise<RateLimitDecision> {
    let window = this.windows.get(key);
    // A changed window length (an admin edit) starts a fresh window.
    if (!window || nowMs >= window.startMs + window.windowMs || window.windowMs !== windowMs) {
      window = { startMs: nowMs, windowMs, count: 0 };
      this.windows.set(key, window);
      if (this.windows.size >= this.nextSweepAt) this.sweep(nowMs);
    }
    const resetInMs = Math.max(0, window.startMs + window.windowMs - nowMs);
    if (window.count >= limit) return { allowed: false, limit, remaining: 0, resetInMs };
    window.count += 1;
    return { allowed: true, limit, remaining: limit - window.count, resetInMs };
  }

  private sweep(nowMs: number): void {
    for (const [key, window] of this.windows) {
      if (nowMs >= window.startMs + window.windowMs) this.windows.delete(key);
    }
    this.nextSweepAt = this.windows.size + SWEEP_EVERY;
  }
}
