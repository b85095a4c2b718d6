import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { TRACED_QUERY_TEXT, traceDatabaseClient } from './database-tracing';
import { tracing, tracingOptions } from './tracing';

/** The span of a statement batch whose values were inlined as literals records its parameterised SQL, never the values. */
describe('traceDatabaseClient: the text a span records', () => {
  const exporter = new InMemorySpanExporter();
  const contextManager = new AsyncLocalStorageContextManager();

  beforeAll(() => {
    context.setGlobalContextManager(contextManager.enable());
    tracing.tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('spec');
    tracingOptions.captureDbStatements = true;
  });
  afterAll(() => {
    tracing.tracer = null;
    tracingOptions.captureDbStatements = false;
    context.disable();
  });
  beforeEach(() => exporter.reset());

  /** Sends `query` inside a parent span and answers the statement's span attributes. */
  async function traced(query: unknown): Promise<Record<string, unknown>> {
    const parent = tracing.tracer!.startSpan('parent');
    await context.with(trace.setSpan(context.active(), parent), () => traceDatabaseClient({}, query, async () => undefined));
    parent.end();
    const span = exporter.getFinishedSpans().find((s) => s.attributes['db.system.name'] === 'postgresql')!;
    return span.attributes;
  }

  it('records the text sent, for a plain query', async () => {
    expect(await traced({ text: 'SELECT 1 FROM users WHERE id = $1' })).toMatchObject({
      'db.query.text': 'SELECT 1 FROM users WHERE id = $1',
      'db.query.summary': 'SELECT users',
    });
  });

  it('records TRACED_QUERY_TEXT in place of a text that carries values', async () => {
    const attributes = await traced({
      text: `BEGIN;\nINSERT INTO audit_logs (id) SELECT id FROM json_to_recordset('[{"id":"secret-ish"}]'::json) AS r(id text)`,
      [TRACED_QUERY_TEXT]: 'BEGIN;\nINSERT INTO audit_logs (id) SELECT id FROM json_to_recordset($1::json) AS r(id text)',
    });
    expect(attributes['db.query.text']).toBe(
      'BEGIN;\nINSERT INTO audit_logs (id) SELECT id FROM json_to_recordset($1::json) AS r(id text)',
    );
    expect(attributes['db.query.summary']).toBe('BEGIN audit_logs');
  });
});
