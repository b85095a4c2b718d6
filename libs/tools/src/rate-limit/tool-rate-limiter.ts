import { Injectable } from '@nestjs/common';
import { AppException, Clock, ErrorCode, rateWindowMs, ScopeContext } from '@app/core';
import type { CatalogTool } from '../catalog/catalog-tool';
import { RateLimitDecision, RateLimitStore } from './rate-limit-store';

/**
 * Step 3 of the pipeline: each user has their own budget per tool, `rateLimit.requests` calls
 * per `rateLimit.window`, from the tool's current catalogue entry (so an admin's change applies
 * to the next call).
 */
@Injectable()
export class ToolRateLimiter {
  constructor(
    private readonly store: RateLimitStore,
    private readonly clock: Clock,
  ) {}

  /** Counts the call; throws the contract's 429 (with X-RateLimit-* and Retry-After) when over budget. */
  async consume(userId: string, tool: CatalogTool): Promise<RateLimitDecision> {
    const decision = await this.store.hit(`tool:${tool.id}:user:${userId}`, tool.rateLimit.requests, tool.rateWindowMs, this.clock.nowMs());
    if (!decision.allowed) {
      throw new AppException(
        ErrorCode.RATE_LIMIT_EXCEEDED,
        `Rate limit for ${tool.id} exceeded: ${tool.rateLimit.requests} calls per ${tool.rateLimit.window}`,
        429,
        [],
        rateLimitHeaders(decision),
      );
    }
    return decision;
  }

  /** A context's own budget (`settings.rateLimit`), on top of each tool's per-user limit. */
  async consumeContext(userId: string, context: ScopeContext): Promise<void> {
    const limit = context.settings.rateLimit;
    const windowMs = limit ? rateWindowMs(limit.window) : null;
    if (!limit || windowMs === null) return;
    const decision = await this.store.hit(`context:${context.id}:user:${userId}`, limit.requests, windowMs, this.clock.nowMs());
    if (!decision.allowed) {
      throw new AppException(
        ErrorCode.RATE_LIMIT_EXCEEDED,
        `Rate limit of context ${context.id} exceeded: ${limit.requests} calls per ${limit.window}`,
        429,
        [],
        rateLimitHeaders(decision),
      );
    }
  }
}

/** X-RateLimit-Reset and Retry-After are in seconds from now (as the global limiter writes them). */
export function rateLimitHeaders(decision: RateLimitDecision): Record<string, string> {
  const resetSec = String(Math.max(1, Math.ceil(decision.resetInMs / 1000)));
  const headers: Record<string, string> = {
    'X-RateLimit-Limit': String(decision.limit),
    'X-RateLimit-Remaining': String(decision.remaining),
    'X-RateLimit-Reset': resetSec,
  };
  if (!decision.allowed) headers['Retry-After'] = resetSec;
  return headers;
}
