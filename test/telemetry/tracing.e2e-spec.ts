import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { defaultTextMapGetter, ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { createMcpHandler, fromJsonSchema, McpServer } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { ADMIN_EMAIL, Caller, identityEnv, login } from '../support/identity';
import { waitFor } from '../support/polling';
import { BUILT_MAIN, ServerProcess, spawnServer, waitForHttp } from '../support/server-process';
import { createTestDatabase, TestDatabase } from '../support/test-database';
import { http } from '../support/test-app';
import { writeUpstreamsFile } from '../upstream/upstream-test-kit';

/**
 * Tracing end to end, with real parts only: the built gateway as operators run it (OTLP/HTTP JSON
 * to a receiver of this test's own on loopback, PostgreSQL, Redis), an upstream MCP server (the
 * official SDK) instrumented with the OpenTelemetry SDK, and the gateway's JSON log on stdout.
 */

interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  links: Array<{ traceId: string; spanId: string }>;
}

/** OTLP span kinds (the proto enum, one above the API's). */
const OTLP_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 };

/** A minimal OTLP/HTTP receiver: POST /v1/traces with JSON bodies (OTEL_EXPORTER_OTLP_PROTOCOL=http/json). */
async function startReceiver(): Promise<{ server: Server; url: string; spans: ReceivedSpan[] }> {
  const spans: ReceivedSpan[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      if (request.method === 'POST' && request.url === '/v1/traces' && String(request.headers['content-type']).includes('json')) {
        spans.push(...decodeOtlpJson(JSON.parse(body)));
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else {
        response.writeHead(415).end();
      }
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans };
}

type OtlpValue = { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number };
type OtlpAttribute = { key: string; value: OtlpValue };

function attributesOf(list: OtlpAttribute[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) {
    out[key] = value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.boolValue ?? value.doubleValue));
  }
  return out;
}

function decodeOtlpJson(body: any): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const resourceSpans of body.resourceSpans ?? []) {
    const service = String(attributesOf(resourceSpans.resource?.attributes)['service.name']);
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        out.push({
          service,
          traceId: span.traceId,
          spanId: span.spanId,
          parentSpanId: span.parentSpanId ?? '',
          name: span.name,
          kind: span.kind,
          attributes: attributesOf(span.attributes),
          links: (span.links ?? []).map((link: any) => ({ traceId: link.traceId, spanId: link.spanId })),
        });
      }
    }
  }
  return out;
}

/** What the upstream saw of each call: the HTTP traceparent header and the `_meta` trace fields. */
interface UpstreamSighting {
  header: string | undefined;
  meta: Record<string, unknown> | undefined;
}

/**
 * An MCP server of the official SDK over Streamable HTTP, instrumented with the OpenTelemetry SDK
 * (its own tracer provider, not the global one): each tool call continues the trace its request
 * carries in `_meta` with a SERVER span of its own, exported to the same receiver.
 */
async function startUpstream(
  receiverUrl: string,
): Promise<{ server: Server; url: string; sightings: UpstreamSighting[]; close(): Promise<void> }> {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'upstream-fixture' }),
    spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: `${receiverUrl}/v1/traces` }))],
  });
  const tracer = provider.getTracer('upstream-fixture');
  const w3c = new W3CTraceContextPropagator();
  const sightings: UpstreamSighting[] = [];
  let header: string | undefined;
  const inputSchema = fromJsonSchema({ type: 'object', properties: { message: { type: 'string' } }, required: ['message'] });
  const handler = createMcpHandler(() => {
    const server = new McpServer({ name: 'upstream-fixture', version: '1.0.0' });
    const traced = (name: string, run: (message: string) => string) =>
      server.registerTool(name, { description: `Fixture tool ${name}`, inputSchema }, async (args, ctx) => {
        const meta = ctx.mcpReq._meta as Record<string, unknown> | undefined;
        sightings.push({ header, meta });
        const parent = w3c.extract(ROOT_CONTEXT, meta ?? {}, defaultTextMapGetter);
        const span = tracer.startSpan(
          `tools/call ${name}`,
          { kind: SpanKind.SERVER, attributes: { 'mcp.method.name': 'tools/call' } },
          parent,
        );
        try {
          return { content: [{ type: 'text' as const, text: run((args as { message: string }).message) }] };
        } finally {
          span.end();
        }
      });
    traced('fixture_echo', (message) => message);
    traced('fixture_explode', () => {
      throw new Error('the fixture tool exploded');
    });
    return server;
  });
  const node = toNodeHandler(handler);
  const server = createServer((request: IncomingMessage, response) => {
    header = typeof request.headers.traceparent === 'string' ? request.headers.traceparent : undefined;
    void node(request, response);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    sightings,
    close: async () => {
      await new Promise((done) => server.close(done));
      await provider.shutdown();
    },
  };
}

function hex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** One 2026-07-28 stateless tools/call, as an agent sends it, with its trace context in _meta and (`header`) as a header. */
async function mcpToolsCall(baseUrl: string, token: string, name: string, args: unknown, traceparent: string, header = true) {
  const response = await fetch(`${baseUrl}/api/v1/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call',
      'mcp-name': name,
      authorization: `Bearer ${token}`,
      ...(header ? { traceparent } : {}),
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: {
        name,
        arguments: args,
        _meta: {
          traceparent,
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: 'trace-e2e', version: '1.0.0' },
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    }),
  });
  const text = await response.text();
  const json = text.startsWith('{') ? JSON.parse(text) : JSON.parse(/^data: (.*)$/m.exec(text)![1]);
  return { status: response.status, json };
}

function logLines(server: ServerProcess): Array<Record<string, any>> {
  return server
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, any>);
}

describe('OpenTelemetry tracing and log correlation (built server, PostgreSQL, Redis)', () => {
  const suite = gatewaySuite((receiverUrl) => ({
    REDIS_URL: 'redis://127.0.0.1:6379',
    REDIS_KEY_PREFIX: `otel-e2e-${hex(4)}:`,
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
    OTEL_SERVICE_NAME: 'gateway-under-test',
    OTEL_BSP_SCHEDULE_DELAY: '50',
  }));

  it("keeps a federated MCP call in the caller's trace: edge, MCP message, pipeline, database, Redis, upstream client and the upstream's own span", async () => {
    const traceId = hex(16);
    const callerSpanId = hex(8);
    const traceparent = `00-${traceId}-${callerSpanId}-01`;

    const answer = await mcpToolsCall(
      suite.server.baseUrl,
      suite.admin.token,
      'fixture_echo',
      { message: 'secret-argument-value' },
      traceparent,
    );
    expect(answer.status).toBe(200);
    expect(answer.json.result.content).toEqual([{ type: 'text', text: 'secret-argument-value' }]);

    const inTrace = await waitFor('the upstream span and the edge span in the trace', () => {
      const spans = suite.receiver.spans.filter((span) => span.traceId === traceId);
      const edge = spans.some(
        (span) => span.service === 'gateway-under-test' && span.kind === OTLP_KIND.SERVER && span.name === 'POST /api/v1/mcp',
      );
      return edge && spans.some((span) => span.service === 'upstream-fixture') ? spans : undefined;
    });
    const gateway = inTrace.filter((span) => span.service === 'gateway-under-test');
    const one = (what: string, match: (span: ReceivedSpan) => boolean) => {
      const found = inTrace.filter(match);
      expect({ what, count: found.length }).toEqual({ what, count: 1 });
      return found[0];
    };

    // The edge: the HTTP request's span, the caller's child.
    const edge = one('edge', (s) => s.service === 'gateway-under-test' && s.name === 'POST /api/v1/mcp');
    expect(edge.kind).toBe(OTLP_KIND.SERVER);
    expect(edge.parentSpanId).toBe(callerSpanId);
    expect(edge.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/api/v1/mcp', 'http.response.status_code': 200 });

    // The MCP message: the same traceparent came in _meta too; the edge span stays its parent.
    const message = one(
      'MCP message',
      (s) => s.name === 'tools/call fixture_echo' && s.service === 'gateway-under-test' && s.kind === OTLP_KIND.SERVER,
    );
    expect(message.parentSpanId).toBe(edge.spanId);
    expect(message.attributes).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'fixture_echo',
      'jsonrpc.request.id': '7',
    });

    // The pipeline.
    const pipeline = one('pipeline', (s) => s.name === 'execute_tool fixture_echo');
    expect(pipeline.parentSpanId).toBe(message.spanId);
    expect(pipeline.attributes).toMatchObject({ 'gen_ai.operation.name': 'execute_tool', 'app.tool.execution.status': 'completed' });

    // Database statements of the pipeline (the execution row, the audit record), under it.
    const underPipeline = (span: ReceivedSpan): boolean => {
      for (let current: ReceivedSpan | undefined = span; current; current = gateway.find((s) => s.spanId === current!.parentSpanId)) {
        if (current.spanId === pipeline.spanId) return true;
      }
      return false;
    };
    const statements = gateway.filter((s) => s.attributes['db.system.name'] === 'postgresql');
    // The call's row with its audit record: one WITH statement in a transaction when the call ends within
    // START_ROW_DELAY_MS (ExecutionRecorder), else the start row's INSERT and then the outcome's transaction.
    const operations = statements.filter(underPipeline).map((s) => s.attributes['db.operation.name']);
    expect({ row: operations.includes('WITH') || operations.includes('INSERT'), committed: operations.includes('COMMIT') }).toEqual({
      row: true,
      committed: true,
    });
    for (const statement of statements) expect(statement.kind).toBe(OTLP_KIND.CLIENT);
    // Redis (the rate limits, the session check) answered inside the same trace.
    expect(gateway.filter((s) => s.attributes['db.system.name'] === 'redis').length).toBeGreaterThan(0);

    // The upstream request, from the pipeline, and the upstream's own span continuing it.
    const client = one(
      'upstream client',
      (s) => s.service === 'gateway-under-test' && s.kind === OTLP_KIND.CLIENT && s.name === 'tools/call fixture_echo',
    );
    expect(underPipeline(client)).toBe(true);
    expect(client.attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'app.upstream.name': 'fixture' });
    const upstreamSpan = one('upstream span', (s) => s.service === 'upstream-fixture');
    expect(upstreamSpan.parentSpanId).toBe(client.spanId);

    // Propagated both ways: the HTTP traceparent header and _meta.traceparent (SEP-414).
    const sighting = suite.upstream.sightings[suite.upstream.sightings.length - 1];
    expect(sighting.meta?.traceparent).toBe(`00-${traceId}-${client.spanId}-01`);
    expect(sighting.header).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));

    // No argument value, result or credential in any attribute.
    const attributeText = JSON.stringify(inTrace.map((span) => span.attributes));
    expect(attributeText).not.toContain('secret-argument-value');
    expect(attributeText).not.toContain(suite.admin.token);
  });

  it('continues a trace carried only in _meta (no header), linking the HTTP request span', async () => {
    const traceId = hex(16);
    const callerSpanId = hex(8);
    const answer = await mcpToolsCall(
      suite.server.baseUrl,
      suite.admin.token,
      'fixture_echo',
      { message: 'x' },
      `00-${traceId}-${callerSpanId}-01`,
      false,
    );
    expect(answer.status).toBe(200);
    const message = await waitFor('the MCP span in the caller trace', () =>
      suite.receiver.spans.find(
        (s) =>
          s.traceId === traceId &&
          s.name === 'tools/call fixture_echo' &&
          s.kind === OTLP_KIND.SERVER &&
          s.service === 'gateway-under-test',
      ),
    );
    expect(message.parentSpanId).toBe(callerSpanId);
    expect(message.links).toHaveLength(1);
    const edge = await waitFor('the HTTP span it links', () => suite.receiver.spans.find((s) => s.spanId === message.links[0].spanId));
    expect(edge.name).toBe('POST /api/v1/mcp');
    expect(edge.traceId).not.toBe(traceId);
  });

  it('writes the real trace id into Error bodies and OpenMetrics exemplars', async () => {
    const traceId = hex(16);
    const res = await http(suite.server.baseUrl, 'GET', '/api/v1/tools/no_such_tool', {
      token: suite.admin.token,
      headers: { traceparent: `00-${traceId}-${hex(8)}-01` },
    });
    expect(res.status).toBe(404);
    expect(res.body.traceId).toBe(traceId);

    const openMetrics = await fetch(`${suite.server.baseUrl}/api/v1/metrics`, {
      headers: { accept: 'application/openmetrics-text; version=1.0.0' },
    });
    expect(openMetrics.headers.get('content-type')).toMatch(/^application\/openmetrics-text/);
    const text = await openMetrics.text();
    expect(text.trimEnd().endsWith('# EOF')).toBe(true);
    expect(text).toMatch(/http_request_duration_seconds_bucket\{[^}]*\} \d+ # \{trace_id="[0-9a-f]{32}",span_id="[0-9a-f]{16}"\}/);
    expect(text).toMatch(
      /tool_execution_duration_seconds_bucket\{[^}]*tool="fixture_echo"[^}]*\} \d+ # \{trace_id="[0-9a-f]{32}",span_id="[0-9a-f]{16}"\}/,
    );

    // The default stays the Prometheus text format, without exemplars and with counters' full names.
    const plain = await fetch(`${suite.server.baseUrl}/api/v1/metrics`);
    expect(plain.headers.get('content-type')).toMatch(/^text\/plain/);
    const plainText = await plain.text();
    expect(plainText).not.toContain('# {trace_id=');
    expect(plainText).toMatch(/^tool_executions_total\{/m);
  });

  it('puts the same request id and trace id on every log line of a failing tool call', async () => {
    await expectCorrelatedFailure(suite.server, suite.admin);
  });
});

describe('log correlation with tracing off (built server, PostgreSQL)', () => {
  const suite = gatewaySuite(() => ({}));

  it("carries the request id and the caller's trace id on every log line of a failing tool call, without any span", async () => {
    await expectCorrelatedFailure(suite.server, suite.admin);
    // Off means off: nothing was exported by the gateway.
    expect(suite.receiver.spans.filter((span) => span.service !== 'upstream-fixture')).toEqual([]);
  });
});

interface Suite {
  server: ServerProcess;
  receiver: Awaited<ReturnType<typeof startReceiver>>;
  upstream: Awaited<ReturnType<typeof startUpstream>>;
  admin: Caller;
}

/** The receiver, the instrumented upstream and the built gateway (with `env`), for a describe block's tests. */
function gatewaySuite(env: (receiverUrl: string) => Record<string, string>): Suite {
  const suite = {} as Suite;
  let database: TestDatabase | undefined;
  let dataDir: string | undefined;
  beforeAll(async () => {
    if (!existsSync(BUILT_MAIN)) throw new Error(`Build first (npm run build): ${BUILT_MAIN} is missing`);
    suite.receiver = await startReceiver();
    suite.upstream = await startUpstream(suite.receiver.url);
    database = await createTestDatabase();
    dataDir = mkdtempSync(join(tmpdir(), 'smcp-otel-'));
    suite.server = await startGateway(database, dataDir, suite.upstream.url, env(suite.receiver.url));
    suite.admin = await login(suite.server, ADMIN_EMAIL);
    await waitForUpstreamTools(suite.server, suite.admin);
  });
  afterAll(async () => {
    suite.server?.child.kill('SIGKILL');
    await suite.server?.exited;
    await suite.upstream?.close();
    await new Promise((done) => suite.receiver?.server.close(done));
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });
  return suite;
}

async function startGateway(
  database: TestDatabase,
  dataDir: string,
  upstreamUrl: string,
  extra: Record<string, string>,
): Promise<ServerProcess> {
  const upstreams = writeUpstreamsFile(dataDir, [
    { name: 'fixture', transport: 'http', url: upstreamUrl, category: 'system', permissions: ['tools:execute'], idPrefix: '' },
  ]);
  const server = await spawnServer(
    identityEnv({
      DATA_DIR: dataDir,
      DATABASE_URL: database.url,
      LOG_LEVEL: 'debug',
      MCP_UPSTREAMS_FILE: upstreams,
      ...extra,
    }),
  );
  await waitForHttp(`${server.baseUrl}/api/v1/ready`, 90_000);
  return server;
}

async function waitForUpstreamTools(server: ServerProcess, admin: Caller): Promise<void> {
  await waitFor('the upstream tools in the catalogue', async () => {
    const res = await http(server.baseUrl, 'GET', '/api/v1/tools/fixture_explode', { token: admin.token });
    return res.status === 200;
  });
}

/** A REST call of the failing upstream tool with a traceparent: every line logged while it ran carries its ids. */
async function expectCorrelatedFailure(server: ServerProcess, admin: Caller): Promise<void> {
  const traceId = hex(16);
  // The log is written asynchronously: a marker request's line closes what came before.
  const marker = `marker-${hex(6)}`;
  await http(server.baseUrl, 'GET', '/api/v1/tools/fixture_explode', { token: admin.token, headers: { 'x-request-id': marker } });
  const before = await waitFor('the marker line', () => {
    const index = logLines(server).findIndex((line) => line.msg === 'request completed' && line.reqId === marker);
    return index >= 0 ? index + 1 : undefined;
  });
  const res = await http(server.baseUrl, 'POST', '/api/v1/tools/fixture_explode/execute', {
    token: admin.token,
    headers: { traceparent: `00-${traceId}-${hex(8)}-01` },
    body: { parameters: { message: 'boom' } },
  });
  expect(res.status).toBe(200);
  expect(res.body.status).toBe('failed');
  const requestId = res.headers.get('x-request-id');
  expect(requestId).toMatch(/^req_/);

  const lines = await waitFor('the request line', () => {
    const all = logLines(server).slice(before);
    return all.some((line) => line.msg === 'request completed' && line.reqId === requestId) ? all : undefined;
  });
  // Everything logged while the call ran is the call's: nothing else talks to this server now.
  expect(lines.length).toBeGreaterThan(1);
  for (const line of lines) {
    expect({ msg: line.msg, reqId: line.reqId, traceId: line.traceId, userId: line.userId }).toEqual({
      msg: line.msg,
      reqId: requestId,
      traceId,
      userId: admin.userId,
    });
  }
}
