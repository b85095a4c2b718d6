import { Tracer, trace } from '@opentelemetry/api';

/** The environment variables tracing reads (the standard OTEL_* ones; the SDK reads the rest itself). */
export type TracingEnv = Record<string, string | undefined>;

/** Our instrumentation scope: the name every span of the gateway is created under. */
export const TRACER_NAME = 'secure-mcp-server';

/**
 * The tracer when tracing runs, else null. Instrumented code tests `tracer` before doing any
 * tracing work, so with tracing off a request pays one property read per instrumented point:
 * no span objects, no context lookups, and no AsyncLocalStorage (on Node 20 an active one turns on
 * promise hooks for every promise, which measured 15-20 % of a cached read).
 */
export const tracing: { tracer: Tracer | null } = { tracer: null };

/** Options of our own (not OTEL_*): what an operator may opt in to record. */
export interface TracingOptions {
  serviceVersion: string;
  /** TRACING_CAPTURE_DB_STATEMENTS=true: the (parameterised) SQL text in `db.query.text`. */
  captureDbStatements: boolean;
}

export const tracingOptions: TracingOptions = { serviceVersion: '0.0.0', captureDbStatements: false };

/** A running tracer provider: flush before the process exits. */
export interface TracingHandle {
  shutdown(): Promise<void>;
}

const OFF = new Set(['none', '']);

/**
 * Tracing is on when an exporter is configured: OTEL_TRACES_EXPORTER names one (otlp, console), or
 * an OTLP endpoint is set; OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it off.
 */
export function tracingConfigured(env: TracingEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (exporter !== undefined && OFF.has(exporter)) return false;
  return exporter !== undefined || Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/** The OTLP protocol chosen for traces (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL), http/protobuf by default. */
export function otlpProtocol(env: TracingEnv): 'grpc' | 'http/protobuf' | 'http/json' {
  const value = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim().toLowerCase();
  if (value === 'grpc' || value === 'http/json') return value;
  if (value === 'http/protobuf') return value;
  throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL must be grpc, http/protobuf or http/json (got "${value}")`);
}

/**
 * Starts the OpenTelemetry SDK when the environment configures an exporter; null (and nothing
 * loaded: the SDK modules are imported here, on demand) otherwise. Registers the tracer
 * provider, the AsyncLocalStorage context manager and the W3C trace-context and baggage
 * propagators. Sampling follows OTEL_TRACES_SAMPLER(_ARG) (default:
 * parent-based always-on), batching OTEL_BSP_*, the exporter's endpoint, headers, timeout and
 * compression OTEL_EXPORTER_OTLP_*; OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the resource.
 */
export async function startTracing(env: TracingEnv, options: Partial<TracingOptions> = {}): Promise<TracingHandle | null> {
  Object.assign(tracingOptions, options);
  if (!tracingConfigured(env)) return null;
  const [{ NodeTracerProvider, BatchSpanProcessor, ConsoleSpanExporter }, resources] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/resources'),
  ]);
  const exporters = (env.OTEL_TRACES_EXPORTER ?? 'otlp')
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter((name) => !OFF.has(name));
  const spanProcessors = [];
  for (const name of exporters) {
    if (name === 'console') spanProcessors.push(new BatchSpanProcessor(new ConsoleSpanExporter()));
    else if (name === 'otlp') spanProcessors.push(new BatchSpanProcessor(await otlpExporter(env)));
    else throw new Error(`OTEL_TRACES_EXPORTER: unsupported exporter "${name}" (otlp, console or none)`);
  }
  const resource = resources
    .resourceFromAttributes({ 'service.name': 'secure-mcp-server', 'service.version': tracingOptions.serviceVersion })
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors });
  provider.register();
  tracing.tracer = trace.getTracer(TRACER_NAME, tracingOptions.serviceVersion);
  return {
    shutdown: async () => {
      tracing.tracer = null;
      await provider.shutdown();
    },
  };
}

async function otlpExporter(env: TracingEnv) {
  switch (otlpProtocol(env)) {
    case 'grpc':
      return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter();
    case 'http/json':
      return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
    default:
      return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
  }
}
