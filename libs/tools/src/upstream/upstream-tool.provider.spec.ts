import { Logger } from '@nestjs/common';
import { createMcpHandler, fromJsonSchema, McpServer } from '@modelcontextprotocol/server';
import type { FetchLike } from '@modelcontextprotocol/client';
import { Clock } from '@app/core';
import { ToolError } from '../provider/tool-error';
import type { ToolCallContext } from '../provider/tool-provider';
import { parseUpstreams, UpstreamConfig } from './upstream-config';
import type { UpstreamToolEntry } from './upstream-tool-definition';
import { UpstreamToolProvider } from './upstream-tool.provider';
import { createUpstreamTransport, upstreamEnvironment } from './upstream-transport';

/** Pins kept in memory: first sight approves, `approved` can be changed by the test. */
class MemoryPins {
  readonly approved = new Map<string, string>();
  async observe(_upstream: string, entries: UpstreamToolEntry[]): Promise<Map<string, string>> {
    for (const entry of entries) if (!this.approved.has(entry.toolId)) this.approved.set(entry.toolId, entry.hash);
    return new Map(entries.map((entry) => [entry.toolId, this.approved.get(entry.toolId)!]));
  }
  async approvedHashes(ids: string[]): Promise<Map<string, string>> {
    return new Map(ids.filter((id) => this.approved.has(id)).map((id) => [id, this.approved.get(id)!]));
  }
}

/** An in-process upstream on the official server SDK, reached through a fetch that records what it was sent. */
function upstreamServer() {
  const seen: Headers[] = [];
  const handler = createMcpHandler(() => {
    const server = new McpServer({ name: 'unit-upstream', version: '3.0.0' });
    const empty = fromJsonSchema({ type: 'object', properties: {} });
    server.registerTool(
      'hello',
      { description: 'Says hello', inputSchema: fromJsonSchema({ type: 'object', properties: { to: { type: 'string' } } }) },
      async (args: any) => ({
        content: [{ type: 'text', text: `hello ${args.to}` }],
      }),
    );
    // Answered with a JSON-RPC error by the fetch below (McpServer turns a throwing tool into isError).
    server.registerTool('refuse', { description: 'Answers a JSON-RPC error', inputSchema: empty }, async () => ({ content: [] }));
    // Answered by the fetch below: a header-mismatch error (-32020), and a structuredContent its output schema refuses.
    server.registerTool('drifted', { description: 'Changed without saying so', inputSchema: empty }, async () => ({ content: [] }));
    server.registerTool(
      'misshaped',
      {
        description: 'Answers out of its output schema',
        inputSchema: empty,
        outputSchema: fromJsonSchema({ type: 'object', properties: { size: { type: 'number' } }, required: ['size'] }),
      },
      async () => ({ content: [], structuredContent: { size: 1 } }),
    );
    server.registerTool('broken', { description: 'Fails', inputSchema: empty }, async () => ({
      content: [{ type: 'text', text: 'no luck today' }],
      isError: true,
    }));
    server.registerTool(
      'measure',
      {
        description: 'Structured',
        inputSchema: empty,
        outputSchema: fromJsonSchema({ type: 'object', properties: { size: { type: 'number' } }, required: ['size'] }),
      },
      async () => ({ content: [{ type: 'text', text: '{"size":3}' }], structuredContent: { size: 3 } }),
    );
    return server;
  });
  let down = false;
  let lists = 0;
  let drifted = 0;
  const fetch: FetchLike = async (url, init) => {
    if (down) throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    const request = new Request(url, init);
    seen.push(request.headers);
    const body =
      typeof init?.body === 'string' ? (JSON.parse(init.body) as { id?: number; method?: string; params?: { name?: string } }) : undefined;
    const answer = (message: Record<string, unknown>) =>
      new Response(JSON.stringify({ jsonrpc: '2.0', id: body?.id, ...message }), {
        status: 200,
        headers: { 'content-type': 'application/json' },
      });
    if (body?.method === 'tools/list') lists += 1;
    if (body?.method === 'tools/call' && body.params?.name === 'refuse') {
      return answer({ error: { code: -32021, message: 'Missing required client capability', data: { required: ['sampling'] } } });
    }
    if (body?.method === 'tools/call' && body.params?.name === 'drifted') {
      drifted += 1;
      return answer({ error: { code: -32020, message: 'Header mismatch: Mcp-Param-Region' } });
    }
    if (body?.method === 'tools/call' && body.params?.name === 'misshaped') {
      return answer({ result: { content: [], structuredContent: { size: 'large' }, resultType: 'complete' } });
    }
    return handler.fetch(request);
  };
  return { seen, fetch, setDown: (value: boolean) => (down = value), lists: () => lists, drifted: () => drifted };
}

const [config] = parseUpstreams(
  JSON.stringify({
    upstreams: [
      {
        name: 'unit',
        transport: 'http',
        url: 'http://upstream.test/mcp',
        headers: { Authorization: { fromEnv: 'UPSTREAM_UNIT_TOKEN', prefix: 'Bearer ' } },
        category: 'data',
        permissions: ['tools:execute'],
        reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
        healthCheckMs: 0,
      },
    ],
  }),
  { baseDir: '/', secrets: { UPSTREAM_UNIT_TOKEN: 'gateway-own-credential' } },
);

/** What a 2026-07-28 upstream on the official SDK adds to every result. */
const SERVER_META = { 'io.modelcontextprotocol/serverInfo': { name: 'unit-upstream', version: '3.0.0' } };

const ctx = (signal = new AbortController().signal): ToolCallContext => ({ signal, userId: 'usr_1', permissions: ['tools:execute'] });

async function connected(upstream = upstreamServer(), pins = new MemoryPins()) {
  const reconciled: number[] = [];
  const provider = new UpstreamToolProvider(config as UpstreamConfig, {
    pins,
    requestReconcile: async () => void reconciled.push(1),
    clock: new Clock(),
    createTransport: (c) => createUpstreamTransport(c, { fetch: upstream.fetch }),
  });
  provider.start();
  const definitions = await provider.listTools();
  return { provider, definitions, upstream, pins, reconciled };
}

describe('UpstreamToolProvider', () => {
  let stop: (() => Promise<void>) | undefined;
  beforeEach(() => {
    // Connection failures are expected here; the log lines would only be noise.
    for (const level of ['log', 'warn', 'error', 'debug'] as const) jest.spyOn(Logger.prototype, level).mockImplementation(() => undefined);
  });
  afterEach(async () => {
    await stop?.();
    stop = undefined;
    jest.restoreAllMocks();
  });

  it("lists the upstream's tools as catalogue definitions and calls them with the gateway's own credentials", async () => {
    const { provider, definitions, upstream, reconciled } = await connected();
    stop = () => provider.stop();
    expect(definitions.map((d) => d.id).sort()).toEqual([
      'unit.broken',
      'unit.drifted',
      'unit.hello',
      'unit.measure',
      'unit.misshaped',
      'unit.refuse',
    ]);
    expect(definitions.every((d) => !d.pendingApproval && d.version === '3.0.0' && d.category === 'data')).toBe(true);
    expect(reconciled.length).toBeGreaterThanOrEqual(1);
    expect(provider.status()).toMatchObject({ state: 'connected', toolCount: 6, pendingApproval: 0, lastError: null });

    expect(await provider.execute('unit.hello', { to: 'world' }, ctx())).toEqual({
      content: [{ type: 'text', text: 'hello world' }],
      _meta: SERVER_META,
    });
    expect(upstream.seen.length).toBeGreaterThan(1);
    for (const headers of upstream.seen) expect(headers.get('authorization')).toBe('Bearer gateway-own-credential');
  });

  it("returns the upstream's result as it came: structured content, and an isError result as a result", async () => {
    const { provider } = await connected();
    stop = () => provider.stop();
    expect(await provider.execute('unit.measure', {}, ctx())).toEqual({
      content: [{ type: 'text', text: '{"size":3}' }],
      structuredContent: { size: 3 },
      _meta: SERVER_META,
    });
    expect(await provider.execute('unit.broken', {}, ctx())).toEqual({
      content: [{ type: 'text', text: 'no luck today' }],
      isError: true,
      _meta: SERVER_META,
    });
  });

  it("carries the upstream's JSON-RPC error (code, message, data) for MCP agents to receive as that error", async () => {
    const { provider } = await connected();
    stop = () => provider.stop();
    const error = await provider.execute('unit.refuse', {}, ctx()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ToolError);
    expect(error).toMatchObject({
      code: 'UPSTREAM_ERROR',
      rpc: { code: -32021, message: 'Missing required client capability', data: { required: ['sampling'] } },
    });
  });

  it("checks structuredContent against the listed tool's output schema, as the SDK does", async () => {
    const { provider } = await connected();
    stop = () => provider.stop();
    const error = await provider.execute('unit.misshaped', {}, ctx()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ToolError);
    expect(error).toMatchObject({ code: 'INVALID_INPUT' });
    expect((error as ToolError).message).toContain("does not match the tool's output schema");
  });

  it('fails a call the upstream refuses for mismatched Mcp-Param-* headers, and lists its tools again', async () => {
    const { provider, upstream } = await connected();
    stop = () => provider.stop();
    const before = upstream.lists();
    const error = await provider.execute('unit.drifted', {}, ctx()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'UPSTREAM_ERROR', rpc: { code: -32020, message: 'Header mismatch: Mcp-Param-Region' } });
    // Sent once: not retried with a definition nobody approved; the re-listing brings that one to the catalogue.
    expect(upstream.drifted()).toBe(1);
    for (let i = 0; i < 50 && upstream.lists() === before; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(upstream.lists()).toBe(before + 1);
  });

  it('fails a result larger than the limit with RESULT_TOO_LARGE instead of truncating it', async () => {
    const upstream = upstreamServer();
    const provider = new UpstreamToolProvider(config as UpstreamConfig, {
      pins: new MemoryPins(),
      requestReconcile: async () => undefined,
      clock: new Clock(),
      createTransport: (c) => createUpstreamTransport(c, { fetch: upstream.fetch }),
      maxResultBytes: 2048,
    });
    stop = () => provider.stop();
    provider.start();
    await provider.listTools();
    expect(await provider.execute('unit.hello', { to: 'x'.repeat(1000) }, ctx())).toMatchObject({ content: [{ type: 'text' }] });
    const error = await provider.execute('unit.hello', { to: 'x'.repeat(3000) }, ctx()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'RESULT_TOO_LARGE' });
    expect((error as Error).message).toContain("over the gateway's limit of 2048 bytes (MCP_UPSTREAM_RESULT_MAX_BYTES)");
  });

  it('withholds a tool whose offered definition is not the approved one', async () => {
    const pins = new MemoryPins();
    pins.approved.set('unit.hello', 'f'.repeat(64));
    const { provider, definitions } = await connected(upstreamServer(), pins);
    stop = () => provider.stop();
    expect(definitions.find((d) => d.id === 'unit.hello')!.pendingApproval).toBe(true);
    expect(definitions.find((d) => d.id === 'unit.measure')!.pendingApproval).toBeUndefined();
    await expect(provider.execute('unit.hello', { to: 'x' }, ctx())).rejects.toMatchObject({ code: 'DEFINITION_NOT_APPROVED' });
    expect(provider.status().pendingApproval).toBe(1);
  });

  it('turns an unreachable upstream into UPSTREAM_UNAVAILABLE at once and marks it down', async () => {
    const { provider, upstream } = await connected();
    stop = () => provider.stop();
    upstream.setDown(true);
    const error = await provider.execute('unit.hello', { to: 'x' }, ctx()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ToolError);
    expect(error).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(provider.status()).toMatchObject({ state: 'down', lastError: 'connection refused' });
    expect(provider.status().nextRetryAt).toBeInstanceOf(Date);
    await expect(provider.execute('unit.hello', { to: 'x' }, ctx())).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
  });

  it("hands a cancelled call back as the pipeline's abort reason", async () => {
    const { provider } = await connected();
    stop = () => provider.stop();
    const controller = new AbortController();
    controller.abort(new ToolError('TIMEOUT', 'too slow'));
    await expect(provider.execute('unit.hello', { to: 'x' }, ctx(controller.signal))).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  it('refuses to list before it ever reached the upstream, so the catalogue keeps what it had', async () => {
    const upstream = upstreamServer();
    upstream.setDown(true);
    const provider = new UpstreamToolProvider(config as UpstreamConfig, {
      pins: new MemoryPins(),
      requestReconcile: async () => undefined,
      clock: new Clock(),
      createTransport: (c) => createUpstreamTransport(c, { fetch: upstream.fetch }),
    });
    stop = () => provider.stop();
    provider.start();
    await expect(provider.listTools()).rejects.toThrow(/has not listed its tools yet/);
    expect(provider.status()).toMatchObject({ state: 'down', toolCount: 0 });
    // A tool the catalogue kept from an earlier run: unavailable, not unknown.
    await expect(provider.execute('unit.hello', {}, ctx())).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
  });
});

describe('upstreamEnvironment', () => {
  it('withholds what the SDK would inherit (HOME, PATH, USER, ...) unless the config gives it', () => {
    const [stdio] = parseUpstreams(
      JSON.stringify({
        upstreams: [
          { name: 's', transport: 'stdio', command: '/bin/x', category: 'data', permissions: [], env: { PATH: '/opt/bin', A: '1' } },
        ],
      }),
      { baseDir: '/', secrets: {} },
    );
    const env = upstreamEnvironment(stdio as Extract<UpstreamConfig, { transport: 'stdio' }>);
    expect(env.PATH).toBe('/opt/bin');
    expect(env.A).toBe('1');
    for (const key of ['HOME', 'USER', 'SHELL', 'LOGNAME', 'TERM']) {
      expect(key in env).toBe(key in process.env);
      expect(env[key]).toBeUndefined();
    }
  });
});
