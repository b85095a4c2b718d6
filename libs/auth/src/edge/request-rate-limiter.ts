import { Inject, Injectable } from '@nestjs/common';
import { InjectThrottlerStorage, normalizeIp, ThrottlerStorage } from '@nestjs/throttler';
import { APP_CONFIG, AppConfig, AppException, ErrorCode, Principal } from '@app/core';
import { InMemoryThrottlerStorage } from '../guards/in-memory-throttler.storage';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** `auth`: AUTH_RATE_LIMIT per client IP (register, login, refresh); `default`: RATE_LIMIT per user, else per IP. */
export type RateBudget = 'auth' | 'default';

/** A request the budget let through, with what is left of it (the X-RateLimit-* values). */
export interface RateAllowance {
  limit: number;
  remaining: number;
  /** Seconds until the window resets. */
  resetSec: number;
}

/**
 * The general rate limit, one decision for every transport: the REST guard calls it per request,
 * the MCP HTTP endpoint per request and the MCP WebSocket per upgrade and per message, so an
 * agent has one RATE_LIMIT per RATE_LIMIT_WINDOW whichever way it comes in. Counts live in
 * @nestjs/throttler's storage (in memory, or Redis shared by every replica). A refusal is the
 * contract's 429 RATE_LIMIT_EXCEEDED with X-RateLimit-* and Retry-After.
 */
@Injectable()
export class RequestRateLimiter {
  constructor(
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Counts one request against the caller's budget; throws the 429 when it is spent. Answered at
   * once (no promise) when the count is kept in this process (InMemoryThrottlerStorage, without
   * Redis); with Redis, once Redis has counted. Await it either way.
   */
  consume(budget: RateBudget, tracker: string): RateAllowance | Promise<RateAllowance> {
    const auth = budget === 'auth';
    const limit = auth ? this.config.auth.authRateLimit : this.config.auth.defaultRateLimit;
    const ttl = (auth ? this.config.auth.authRateWindowSec : this.config.auth.defaultRateWindowSec) * 1000;
    const key = `${budget}:${tracker}`;
    if (this.storage instanceof InMemoryThrottlerStorage)
      return allowanceOf(this.storage.incrementNow(key, ttl, limit, ttl, 'default'), limit);
    return this.storage.increment(key, ttl, limit, ttl, 'default').then((record) => allowanceOf(record, limit));
  }

  /** The default budget's tracker: the user when authenticated, else the client IP (IPv6 per /64). */
  static trackerOf(principal: Principal | undefined, ip: string): string {
    return principal ? `user:${principal.userId}` : `ip:${normalizeIp(ip)}`;
  }
}

/** A counted request's allowance, or the 429 when the budget is spent. */
function allowanceOf(record: ThrottlerStorageRecord, limit: number): RateAllowance {
  const { totalHits, timeToExpire, isBlocked, timeToBlockExpire } = record;
  if (isBlocked) {
    const retryAfter = String(Math.max(1, timeToBlockExpire));
    throw new AppException(ErrorCode.RATE_LIMIT_EXCEEDED, 'Too many requests; retry later', 429, [], {
      'X-RateLimit-Limit': String(limit),
      'X-RateLimit-Remaining': '0',
      'X-RateLimit-Reset': retryAfter,
      'Retry-After': retryAfter,
    });
  }
  return { limit, remaining: Math.max(0, limit - totalHits), resetSec: timeToExpire };
}

/** The X-RateLimit-* headers of an allowance. */
export function rateAllowanceHeaders(allowance: RateAllowance): Record<string, string> {
  return {
    'X-RateLimit-Limit': String(allowance.limit),
    'X-RateLimit-Remaining': String(allowance.remaining),
    'X-RateLimit-Reset': String(allowance.resetSec),
  };
}
