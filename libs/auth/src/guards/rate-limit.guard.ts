import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { normalizeIp } from '@nestjs/throttler';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AUTH_RATE_LIMIT_KEY } from '../decorators/auth-rate-limit.decorator';
import { RateAllowance, rateAllowanceHeaders, RequestRateLimiter } from '../edge/request-rate-limiter';

/**
 * The REST side of the general rate limit (RequestRateLimiter, which the MCP transports call too),
 * with two budgets:
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
    private readonly limiter: RequestRateLimiter,
    private readonly reflector: Reflector,
  ) {}

  /**
   * Answered at once (no promise) when the count is kept in this process (no Redis), else once
   * Redis has counted; a 429 is thrown either way (Nest's guard runner awaits whatever this returns).
   */
  canActivate(context: ExecutionContext): boolean | Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const auth = this.isAuthRoute(context);
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const tracker = auth ? `ip:${normalizeIp(request.ip)}` : RequestRateLimiter.trackerOf(request.principal, request.ip);
    const reply = http.getResponse<FastifyReply>();
    const allowance = this.limiter.consume(auth ? 'auth' : 'default', tracker);
    return allowance instanceof Promise ? allowance.then((counted) => announce(reply, counted)) : announce(reply, allowance);
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
}

/** The allowance's X-RateLimit-* headers on the reply. */
function announce(reply: FastifyReply, allowance: RateAllowance): true {
  reply.headers(rateAllowanceHeaders(allowance));
  return true;
}
