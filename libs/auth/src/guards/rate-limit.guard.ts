import { ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  normalizeIp,
  ThrottlerGuard,
  ThrottlerLimitDetail,
  ThrottlerModuleOptions,
  ThrottlerRequest,
  ThrottlerStorage,
} from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import { APP_CONFIG, AppConfig, AppException, ErrorCode } from '@app/core';
import { AUTH_RATE_LIMIT_KEY } from '../decorators/auth-rate-limit.decorator';

/**
 * Two budgets over @nestjs/throttler (its storage is injectable, so a Redis store can replace
 * the in-memory one):
 * - `@AuthRateLimit()` routes (register, login, refresh): AUTH_RATE_LIMIT per AUTH_RATE_WINDOW
 *   per client IP, one budget across those routes;
 * - everything else: RATE_LIMIT per RATE_LIMIT_WINDOW per user when authenticated (this guard
 *   runs after the authentication guard), else per client IP.
 * The client IP is Fastify's `request.ip`, which honours X-Forwarded-For only when TRUST_PROXY
 * says the proxy is ours, so a spoofed header does not buy a fresh budget.
 * A refusal is the contract's Error body (429, RATE_LIMIT_EXCEEDED) with X-RateLimit-* and
 * Retry-After.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    super(options, storage, reflector);
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    return super.canActivate(context);
  }

  protected override async handleRequest(props: ThrottlerRequest): Promise<boolean> {
    const auth = this.reflector.getAllAndOverride<boolean>(AUTH_RATE_LIMIT_KEY, [props.context.getHandler(), props.context.getClass()]);
    const limit = auth ? this.config.auth.authRateLimit : this.config.auth.defaultRateLimit;
    const ttl = (auth ? this.config.auth.authRateWindowSec : this.config.auth.defaultRateWindowSec) * 1000;
    const bucket = auth ? 'auth' : 'default';
    return super.handleRequest({
      ...props,
      limit,
      ttl,
      blockDuration: ttl,
      getTracker: (req) => this.trackerFor(req as FastifyRequest, auth),
      generateKey: (_context, tracker) => `${bucket}:${tracker}`,
    });
  }

  protected override async throwThrottlingException(_context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    const retryAfter = Math.max(1, detail.timeToBlockExpire);
    throw new AppException(ErrorCode.RATE_LIMIT_EXCEEDED, 'Too many requests; retry later', 429, [], {
      'X-RateLimit-Limit': String(detail.limit),
      'X-RateLimit-Remaining': '0',
      'X-RateLimit-Reset': String(retryAfter),
      'Retry-After': String(retryAfter),
    });
  }

  private trackerFor(request: FastifyRequest, auth: boolean): string {
    if (!auth && request.principal) return `user:${request.principal.userId}`;
    return `ip:${normalizeIp(request.ip, this.ipv6SubnetPrefix)}`;
  }
}
