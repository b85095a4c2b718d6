import { context, SpanKind, trace } from '@opentelemetry/api';
import { failSpan } from './spans';
import { tracing, tracingOptions } from './tracing';

const OPERATION = /^\s*(?:--[^\n]*\n\s*)*([A-Za-z]+)/;
const TARGET = /\b(?:FROM|INTO|UPDATE|TABLE|JOIN)\s+("?[A-Za-z_][\w.]*"?)/i;

/** `SELECT users`, `INSERT tool_executions`, `COMMIT`: the query summary of the semantic conventions, no values. */
export function querySummary(text: string): { operation: string; summary: string } {
  const operation = (OPERATION.exec(text)?.[1] ?? 'QUERY').toUpperCase();
  const target = TARGET.exec(text)?.[1]?.replace(/"/g, '');
  return { operation, summary: target ? `${operation} ${target}` : operation };
}

interface PgClientLike {
  host?: string;
  port?: number;
  database?: string;
}

/**
 * One CLIENT span per statement (or statement batch: several statements sent as one query text)
 * a pg client sends inside a trace, child of the active span: `db.system.name`, `db.operation.name`,
 * `db.query.summary`, the server; the SQL text only when TRACING_CAPTURE_DB_STATEMENTS=true (it is
 * parameterised, but an operator decides). With tracing off it is `send()`.
 */
export function traceDatabaseClient<T>(client: PgClientLike, query: unknown, send: () => T): T {
  const tracer = tracing.tracer;
  if (!tracer) return send();
  // Only statements of a traced operation: background sweeps and heartbeats would each start a trace.
  const parent = context.active();
  if (!trace.getSpan(parent)) return send();
  const text =
    typeof query === 'string' ? query : typeof (query as { text?: unknown })?.text === 'string' ? (query as { text: string }).text : '';
  const { operation, summary } = querySummary(text);
  const span = tracer.startSpan(
    summary,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'db.system.name': 'postgresql',
        'db.operation.name': operation,
        'db.query.summary': summary,
        ...(client.database ? { 'db.namespace': client.database } : {}),
        ...(client.host ? { 'server.address': client.host } : {}),
        ...(client.port ? { 'server.port': client.port } : {}),
        ...(tracingOptions.captureDbStatements && text ? { 'db.query.text': text.slice(0, 4096) } : {}),
      },
    },
    parent,
  );
  let result: T;
  try {
    result = context.with(trace.setSpan(parent, span), send);
  } catch (error) {
    failSpan(span, error);
    span.end();
    throw error;
  }
  if (result instanceof Promise) {
    void result.then(
      () => span.end(),
      (error: unknown) => {
        failSpan(span, error);
        span.end();
      },
    );
  } else {
    span.end();
  }
  return result;
}
