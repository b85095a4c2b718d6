import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { InjectThrottlerStorage, normalizeIp, ThrottlerStorage } from '@nestjs/throttler';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { APP_CONFIG, AppConfig, AppException, ErrorCode } from '@app/core';
import { AUTH_RATE_LIMIT_KEY } from '../decorators/auth-rate-limit.decorator';

/**
 * Two budgets kept in @nestjs/throttler's storage (injectable, so a Redis store can replace the
 * in-memory one); the check itself is ours, a few lines where the library's guard resolved half a
 * dozen metadata keys and async options per request:
 * - `@AuthRateLimit()` routes (register, login, refresh): AUTH_RATE_LIMIT per AUTH_RATE_WINDOW
 *   per client IP, one budget across those routes;
 * - everything else: RATE_LIMIT per RATE_LIMIT_WINDOW per user when authenticated (this guard
 *   runs after the authentication guard), else per client IP.
 * IPv6 clients share one budget per /64, as with the library's guard. The client IP is Fastify's
 * `request.ip`, which honours X-Forwarded-For only when TRUST_PROXY says the proxy is ours, so a
 * spoofed header does not buy a fresh budget.
 * A refusal is the contract's Error body (429, RATE_LIMIT_EXCEEDED) with X-RateLimit-* and
 * Retry-After.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  /** Whether a handler is `@AuthRateLimit()`: route metadata never changes, so it is read once. */
  private readonly authRoutes = new WeakMap<object, WeakMap<object, boolean>>();

  constructor(
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    private readonly reflector: Reflector,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const auth = this.isAuthRoute(context);
    const limit = auth ? this.config.auth.authRateLimit : this.config.auth.defaultRateLimit;
    const ttl = (auth ? this.config.auth.authRateWindowSec : this.config.auth.defaultRateWindowSec) * 1000;
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const key = `${auth ? 'auth' : 'default'}:${this.trackerFor(request, auth)}`;
    const { totalHits, timeToExpire, isBlocked, timeToBlockExpire } = await this.storage.increment(key, ttl, limit, ttl, 'default');
    if (isBlocked) {
      const retryAfter = String(Math.max(1, timeToBlockExpire));
      throw new AppException(ErrorCode.RATE_LIMIT_EXCEEDED, 'Too many requests; retry later', 429, [], {
        'X-RateLimit-Limit': String(limit),
        'X-RateLimit-Remaining': '0',
        'X-RateLimit-Reset': retryAfter,
        'Retry-After': retryAfter,
      });
    }
    reply.header('X-RateLimit-Limit', limit);
    reply.header('X-RateLimit-Remaining', Math.max(0, limit - totalHits));
    reply.header('X-RateLimit-Reset', timeToExpire);
    return true;
  }

  private isAuthRoute(context: ExecutionContext): boolean {
    const handler = context.getHandler();
    const controller = context.getClass();
    // Keyed by class too: an inherited handler can sit under classes with different metadata.
    let routes = this.authRoutes.get(controller);
    if (!routes) {
      routes = new WeakMap();
      this.authRoutes.set(controller, routes);
    }
    let auth = routes.get(handler);
    if (auth === undefined) {
      auth = this.reflector.getAllAndOverride<boolean>(AUTH_RATE_LIMIT_KEY, [handler, controller]) === true;
      routes.set(handler, auth);
    }
    return auth;
  }

  private trackerFor(request: FastifyRequest, auth: boolean): string {
    if (!auth && request.principal) return `user:${request.principal.userId}`;
    return `ip:${normalizeIp(request.ip)}`;
  }
}
