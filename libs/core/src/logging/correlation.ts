import type { FastifyRequest } from 'fastify';
import type { Principal } from '../auth/principal';

/**
 * What every log line a request causes carries, beside its own fields: the request id, the trace
 * id (the real one when tracing runs, else the caller's traceparent's or a fresh one, as in Error
 * bodies), and once the edge knows them the user and session.
 *
 * It travels explicitly, in the ExecutionScope the edge resolves (and from there in the tool call
 * context), not in an AsyncLocalStorage: on Node 20 an active one turns on promise hooks for every
 * promise of every request, which measured 15-20 % of a cached read. Code logging on behalf of a
 * request spreads it into the line: `logger.warn({ ...scope.correlation, tool }, '...')`.
 */
export interface Correlation {
  reqId: string;
  traceId: string;
  userId?: string;
  sessionId?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the request-context hook; the edge adds the caller (see correlate). */
    correlation: Correlation;
  }
}

/** A request's correlation with its caller filled in (the same object: lines logged later see the caller too). */
export function correlate(request: FastifyRequest, principal?: Principal): Correlation {
  const correlation = (request.correlation ??= { reqId: request.id, traceId: request.traceId });
  if (principal) {
    correlation.userId = principal.userId;
    if (principal.sessionId) correlation.sessionId = principal.sessionId;
  }
  return correlation;
}
