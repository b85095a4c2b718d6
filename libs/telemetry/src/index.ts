export { TelemetryModule } from './telemetry.module';
export { startTracing, tracing } from './tracing';
export type { TracingHandle } from './tracing';
export { activeContext, activeTraceId, exemplarOf, failSpan, inSpan, SpanKind } from './spans';
export type { Attributes, Span } from './spans';
export { correlationMixin, installHttpTracing } from './http-tracing';
export { contextFromMeta, metaHasTraceContext, traceMeta, withTraceHeaders } from './propagation';
export { traceDatabaseClient } from './database-tracing';
export { traceRedisClient } from './redis-tracing';
