import { Context, propagation, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { contextFromMeta, traceMeta, withTraceHeaders } from './propagation';
import { querySummary } from './database-tracing';
import { otlpProtocol, tracingConfigured } from './tracing';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;

function remoteParent(traceState?: string): Context {
  const context = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: TRACE_ID,
    spanId: SPAN_ID,
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  });
  if (!traceState) return context;
  // The W3C propagator reads tracestate from the carrier; build it the way a caller's would arrive.
  return propagation.extract(ROOT_CONTEXT, { traceparent: TRACEPARENT, tracestate: traceState });
}

describe('trace context propagation helpers', () => {
  beforeAll(() => propagation.setGlobalPropagator(new W3CTraceContextPropagator()));
  afterAll(() => propagation.disable());

  describe('MCP _meta (SEP-414)', () => {
    it('writes traceparent and tracestate of a context as bare _meta keys', () => {
      expect(traceMeta(remoteParent())).toEqual({ traceparent: TRACEPARENT });
      expect(traceMeta(remoteParent('vendor=abc'))).toEqual({ traceparent: TRACEPARENT, tracestate: 'vendor=abc' });
    });

    it('writes nothing for a context without a span', () => {
      expect(traceMeta(ROOT_CONTEXT)).toEqual({});
    });

    it('continues the trace a request carries in _meta', () => {
      const fallback = ROOT_CONTEXT.setValue(Symbol('marker'), 1);
      const continued = contextFromMeta({ traceparent: TRACEPARENT, tracestate: 'vendor=abc', progressToken: 7 }, fallback);
      const ids = trace.getSpanContext(continued);
      expect(ids?.traceId).toBe(TRACE_ID);
      expect(ids?.spanId).toBe(SPAN_ID);
      expect(ids?.isRemote).toBe(true);
      expect(ids?.traceState?.get('vendor')).toBe('abc');
    });

    it.each([
      ['no _meta', undefined],
      ['no traceparent', { progressToken: 1 }],
      ['a traceparent that is not a string', { traceparent: 42 }],
      ['a malformed traceparent', { traceparent: '00-xyz-00f067aa0ba902b7-01' }],
      ['the all-zero trace id', { traceparent: `00-${'0'.repeat(32)}-${SPAN_ID}-01` }],
    ])('keeps the fallback context for %s', (_name, meta) => {
      const fallback = ROOT_CONTEXT.setValue(Symbol('marker'), 1);
      expect(contextFromMeta(meta, fallback)).toBe(fallback);
    });

    it("keeps the fallback when _meta continues the fallback's own trace (same traceparent as the HTTP header)", () => {
      const http = trace.setSpanContext(ROOT_CONTEXT, { traceId: TRACE_ID, spanId: '1111111111111111', traceFlags: 1, isRemote: false });
      expect(contextFromMeta({ traceparent: TRACEPARENT }, http)).toBe(http);
    });

    it('round-trips: what one hop writes, the next continues', () => {
      const written = traceMeta(remoteParent('a=1,b=2'));
      const read = trace.getSpanContext(contextFromMeta(written, ROOT_CONTEXT));
      expect(read?.traceId).toBe(TRACE_ID);
      expect(read?.traceState?.serialize()).toBe('a=1,b=2');
    });
  });

  describe('HTTP headers to an upstream', () => {
    it('adds traceparent (and tracestate) and keeps the headers already set', () => {
      const init = withTraceHeaders({ method: 'POST', headers: { authorization: 'Bearer upstream-credential' } }, remoteParent('v=1'));
      const headers = new Headers(init?.headers);
      expect(init?.method).toBe('POST');
      expect(headers.get('authorization')).toBe('Bearer upstream-credential');
      expect(headers.get('traceparent')).toBe(TRACEPARENT);
      expect(headers.get('tracestate')).toBe('v=1');
    });

    it('replaces a traceparent already present (the active span is the parent now)', () => {
      const init = withTraceHeaders({ headers: new Headers({ traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01` }) }, remoteParent());
      expect(new Headers(init?.headers).get('traceparent')).toBe(TRACEPARENT);
    });

    it('returns the same init when there is no trace context', () => {
      const init = { headers: { accept: 'application/json' } };
      expect(withTraceHeaders(init, ROOT_CONTEXT)).toBe(init);
      expect(withTraceHeaders(undefined, ROOT_CONTEXT)).toBeUndefined();
    });
  });
});

describe('tracing configuration (standard OTEL_* variables)', () => {
  it.each([
    [{}, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, true],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }, true],
    [{ OTEL_TRACES_EXPORTER: 'otlp' }, true],
    [{ OTEL_TRACES_EXPORTER: 'console' }, true],
    [{ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, false],
    [{ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }, false],
  ])('%j: on = %s', (env, on) => {
    expect(tracingConfigured(env)).toBe(on);
  });

  it('picks the OTLP protocol, the traces-specific variable first, http/protobuf by default', () => {
    expect(otlpProtocol({})).toBe('http/protobuf');
    expect(otlpProtocol({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toBe('grpc');
    expect(otlpProtocol({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' })).toBe('http/json');
    expect(() => otlpProtocol({ OTEL_EXPORTER_OTLP_PROTOCOL: 'carrier-pigeon' })).toThrow(/grpc, http\/protobuf or http\/json/);
  });
});

describe('database span names', () => {
  it.each([
    ['SELECT "u"."id" FROM "users" "u" WHERE "u"."id" = $1', 'SELECT', 'SELECT users'],
    ['INSERT INTO tool_executions (id) VALUES ($1)', 'INSERT', 'INSERT tool_executions'],
    ['UPDATE "sessions" SET last_activity = $1', 'UPDATE', 'UPDATE sessions'],
    ['COMMIT', 'COMMIT', 'COMMIT'],
    ['-- hint\n  with x as (select 1) select * from x', 'WITH', 'WITH x'],
  ])('%s', (text, operation, summary) => {
    expect(querySummary(text)).toEqual({ operation, summary });
  });
});
