/**
 * Bench only (P1B, the P1 breakdown): preloaded into a gateway process (`node -r` before main.ts)
 * to turn off, for that process, one part of what a REST request goes through, so the part's
 * share of P1 can be measured. Never loaded by the server itself; nothing in apps/ or libs/ reads
 * BENCH_P1_OFF. A comma-separated list of:
 *
 *   throttler   the general rate limit's count (RequestRateLimiter.consume answers a fixed allowance)
 *   metrics     the HTTP duration histogram (HttpMetricsService.attach adds no hook)
 *   auth        authentication (Authenticator.authenticateRequest: token, session and user checks),
 *               its principal computed once per Authorization header and reused
 *   guards      the whole global guard chain (both guards answer true at once; the principal as
 *               with `auth`), leaving Nest's router, pipes and handler
 *
 * The request log is turned off by the scenario itself (LOG_LEVEL=warn instead of info).
 */
import type { FastifyRequest } from 'fastify';
import { AuthenticationGuard, Authenticator, RateLimitGuard, RequestRateLimiter } from '@app/auth';
import type { Principal } from '@app/core';
import { HttpMetricsService } from '@app/health';

const SWITCHES = ['throttler', 'metrics', 'auth', 'guards'] as const;
const off = new Set(
  (process.env.BENCH_P1_OFF ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean),
);
for (const name of off)
  if (!(SWITCHES as readonly string[]).includes(name))
    throw new Error(`BENCH_P1_OFF: unknown part "${name}" (known: ${SWITCHES.join(', ')})`);

if (off.has('throttler')) {
  RequestRateLimiter.prototype.consume = () => ({ limit: 1_000_000, remaining: 1_000_000, resetSec: 60 });
}
if (off.has('metrics')) {
  HttpMetricsService.prototype.attach = () => undefined;
}
if (off.has('auth') || off.has('guards')) {
  const authenticate = Authenticator.prototype.authenticateRequest;
  const known = new Map<string, Principal>();
  Authenticator.prototype.authenticateRequest = async function (this: Authenticator, request: FastifyRequest): Promise<Principal> {
    const header = request.headers.authorization ?? '';
    let principal = known.get(header);
    if (!principal) {
      principal = await authenticate.call(this, request);
      known.set(header, principal);
    }
    return principal;
  };
}
if (off.has('guards')) {
  // The principal the handler reads still has to be on the request: the first request of each
  // credential goes through the real guard, later ones reuse its principal.
  const guard = AuthenticationGuard.prototype.canActivate;
  const principals = new Map<string, Principal>();
  AuthenticationGuard.prototype.canActivate = function (this: AuthenticationGuard, context) {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const principal = principals.get(request.headers.authorization ?? '');
    if (principal) {
      request.principal = principal;
      return true;
    }
    return Promise.resolve(guard.call(this, context)).then((allowed: boolean) => {
      if (request.principal) principals.set(request.headers.authorization ?? '', request.principal);
      return allowed;
    });
  } as typeof guard;
  RateLimitGuard.prototype.canActivate = () => true;
}
