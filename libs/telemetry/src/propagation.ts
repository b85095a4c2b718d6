import { Context, propagation, ROOT_CONTEXT, TextMapGetter, TextMapSetter, trace } from '@opentelemetry/api';

/**
 * Trace context in MCP: a request's `params._meta` carries W3C `traceparent`, `tracestate` and
 * `baggage` as bare keys (SEP-414, by exception to the `_meta` prefix rule).
 */
type Meta = Record<string, unknown>;

/** Reads string values of a `_meta` object (anything else a caller sent is not trace context). */
const metaGetter: TextMapGetter<Meta | undefined> = {
  keys: (carrier) => (carrier ? Object.keys(carrier) : []),
  get: (carrier, key) => {
    const value = carrier?.[key];
    return typeof value === 'string' ? value : undefined;
  },
};

const metaSetter: TextMapSetter<Meta> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/** Writes header values into a plain header record (fetch's init.headers as an object). */
const headerRecordSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/** True when `_meta` carries a trace parent (the only trace field that can start a context). */
export function metaHasTraceContext(meta: unknown): meta is Meta {
  return typeof meta === 'object' && meta !== null && typeof (meta as Meta).traceparent === 'string';
}

/**
 * The context a `_meta` with trace fields continues (through the registered propagators); the
 * `fallback` (the active context: the HTTP request's span) when it has none, an invalid one, or
 * one of the fallback's own trace (a client that sends the same traceparent as header and in
 * `_meta`: the HTTP span, itself the caller's child, is the nearer parent).
 */
export function contextFromMeta(meta: unknown, fallback: Context): Context {
  if (!metaHasTraceContext(meta)) return fallback;
  const extracted = propagation.extract(ROOT_CONTEXT, meta, metaGetter);
  const ids = trace.getSpanContext(extracted);
  if (!ids || ids.traceId === trace.getSpanContext(fallback)?.traceId) return fallback;
  return extracted;
}

/** The trace fields of `context` (traceparent, tracestate, baggage) as `_meta` entries; empty without a span. */
export function traceMeta(context: Context): Record<string, string> {
  const meta: Record<string, string> = {};
  propagation.inject(context, meta, metaSetter);
  return meta;
}

/**
 * `init` with the trace headers of `context` added (traceparent, tracestate, baggage), for a
 * fetch to an upstream; `init` itself when there is nothing to add. Existing headers are kept.
 */
export function withTraceHeaders(init: RequestInit | undefined, context: Context): RequestInit | undefined {
  const added: Record<string, string> = {};
  propagation.inject(context, added, headerRecordSetter);
  if (Object.keys(added).length === 0) return init;
  const headers = new Headers(init?.headers);
  for (const [key, value] of Object.entries(added)) headers.set(key, value);
  return { ...init, headers };
}
