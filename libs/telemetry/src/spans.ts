import { Attributes, context, Context, Link, Span, SpanKind, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import { tracing } from './tracing';

export { SpanKind };
export type { Attributes, Context, Span };

export interface SpanRequest {
  kind?: SpanKind;
  attributes?: Attributes;
  /** The parent; the active context by default. */
  parent?: Context;
  links?: Link[];
}

/**
 * Runs `work` inside a new span that is active for everything it awaits, ends it when `work`
 * settles, and marks it failed (status ERROR, `error.type`, the exception event) when `work`
 * throws. With tracing off it is `work()` and nothing else. `work` gets the span (undefined when
 * off) to add attributes it learns on the way.
 */
export function inSpan<T>(name: string, request: SpanRequest, work: (span: Span | undefined) => Promise<T>): Promise<T> {
  const tracer = tracing.tracer;
  if (!tracer) return work(undefined);
  const parent = request.parent ?? context.active();
  const span = tracer.startSpan(
    name,
    { kind: request.kind ?? SpanKind.INTERNAL, attributes: request.attributes, links: request.links },
    parent,
  );
  return context.with(trace.setSpan(parent, span), async () => {
    try {
      return await work(span);
    } catch (error) {
      failSpan(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Marks a span failed by an exception: status ERROR, `error.type` and the exception event (type and message only). */
export function failSpan(span: Span, error: unknown, type?: string): void {
  const name = type ?? errorTypeOf(error);
  span.setAttribute('error.type', name);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message.slice(0, 256) : undefined });
  // No stack: the exception event carries type and message, like our Error bodies.
  span.addEvent('exception', {
    'exception.type': name,
    ...(error instanceof Error ? { 'exception.message': error.message.slice(0, 256) } : {}),
  });
}

/** `error.type` per the semantic conventions: the error's code when it has a string one, else its class. */
export function errorTypeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code) return code;
  if (error instanceof Error) return error.constructor.name;
  return '_OTHER';
}

/** The active span's ids when tracing runs and it is sampled: exemplar labels for a histogram observation. */
export function exemplarOf(span?: Span): { trace_id: string; span_id: string } | undefined {
  if (!tracing.tracer) return undefined;
  const current = span ?? trace.getActiveSpan();
  const ids = current?.spanContext();
  if (!ids || !(ids.traceFlags & TraceFlags.SAMPLED)) return undefined;
  return { trace_id: ids.traceId, span_id: ids.spanId };
}

/** The trace id of the active span when tracing runs (for log lines and error bodies). */
export function activeTraceId(): string | undefined {
  if (!tracing.tracer) return undefined;
  return trace.getActiveSpan()?.spanContext().traceId;
}

/** The active context (the current span and its trace state), for propagation. */
export function activeContext(): Context {
  return context.active();
}
