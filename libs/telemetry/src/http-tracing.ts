import { context, Context, createContextKey, propagation, ROOT_CONTEXT, Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Correlation } from '@app/core';
import { tracing } from './tracing';

/** Where the request's correlation sits in its trace context, for log lines of code without a scope (see correlationMixin). */
const CORRELATION_KEY = createContextKey('secure-mcp-server.correlation');

declare module 'fastify' {
  interface FastifyRequest {
    /** The request's server span and the context it is active in (tracing on only). */
    otel: { span: Span; context: Context; ended: boolean } | null;
  }
}

/**
 * One SERVER span per HTTP request (REST and MCP over HTTP; a WebSocket upgrade too), continuing
 * the caller's W3C `traceparent`/`tracestate`, named `METHOD /route/template`, with the HTTP
 * semantic-convention attributes (no query string, no headers). The span is made active for
 * the route's handler (preHandler: after the body is read, whose stream callbacks run outside
 * any context), so every span the request causes becomes its child. The request's trace id
 * (Error bodies, log lines) becomes the span's. `untracedRoutes` (probes, scrapes) get no span.
 * Nothing is installed when tracing is off.
 */
export function installHttpTracing(fastify: FastifyInstance, options: { untracedRoutes?: ReadonlySet<string> } = {}): void {
  const tracer = tracing.tracer;
  if (!tracer) return;
  const untraced = options.untracedRoutes ?? new Set<string>();
  fastify.decorateRequest('otel', null);
  fastify.addHook('onRequest', (request, _reply, done) => {
    const route = request.routeOptions.url;
    // Probes and scrapes would each start a trace of their own, every few seconds, forever.
    if (route && untraced.has(route)) return done();
    const parent = propagation.extract(ROOT_CONTEXT, request.headers);
    const span = tracer.startSpan(
      route ? `${request.method} ${route}` : request.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': request.method,
          'url.path': request.url.split('?')[0],
          'url.scheme': request.protocol,
          ...(route ? { 'http.route': route } : {}),
          'client.address': request.ip,
          'network.protocol.version': request.raw.httpVersion,
          ...(request.headers['user-agent'] ? { 'user_agent.original': request.headers['user-agent'] } : {}),
          'app.request_id': request.id,
        },
      },
      parent,
    );
    const traceId = span.spanContext().traceId;
    request.traceId = traceId;
    request.correlation.traceId = traceId;
    const active = trace.setSpan(parent, span).setValue(CORRELATION_KEY, request.correlation);
    request.otel = { span, context: active, ended: false };
    context.with(active, done);
  });
  fastify.addHook('preHandler', (request, _reply, done) => {
    if (request.otel) context.with(request.otel.context, done);
    else done();
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    endHttpSpan(request, reply.statusCode);
    done();
  });
  fastify.addHook('onRequestAbort', (request, done) => {
    endHttpSpan(request, undefined);
    done();
  });
}

function endHttpSpan(request: FastifyRequest, statusCode: number | undefined): void {
  const otel = request.otel;
  if (!otel || otel.ended) return;
  otel.ended = true;
  const { span } = otel;
  if (request.correlation.userId) span.setAttribute('enduser.id', request.correlation.userId);
  if (statusCode === undefined) {
    span.setAttribute('error.type', 'aborted');
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'The client closed the connection first' });
  } else {
    span.setAttribute('http.response.status_code', statusCode);
    // Server spans: only 5xx is an error (4xx is the client's).
    if (statusCode >= 500) {
      span.setAttribute('error.type', String(statusCode));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }
  span.end();
}

/**
 * A pino mixin for while tracing runs: every line logged inside a request's trace context gets the
 * request's correlation (request id, trace id, user, session) and the active span id, also lines
 * of code that has no scope to spread in (repositories, the database and Redis layers).
 */
export function correlationMixin(): () => object {
  return () => {
    const active = context.active();
    const correlation = active.getValue(CORRELATION_KEY) as Correlation | undefined;
    const spanId = trace.getSpanContext(active)?.spanId;
    if (!correlation) return spanId ? { traceId: trace.getSpanContext(active)!.traceId, spanId } : {};
    return spanId ? { ...correlation, spanId } : correlation;
  };
}
