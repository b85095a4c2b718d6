import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { AppException, Clock, ErrorCode, ExecutionScope, Principal } from '@app/core';
import { InProcessEventBus } from '@app/redis';
import type { CatalogTool, ExecuteToolRequest, ExecutionMeta, ToolExecution } from '@app/tools';
import { AgentRequestRelays } from '../relay/agent-request-relay';
import { HeldCallForwarding } from '../relay/held-call-forwarding';
import { HeldCalls } from '../relay/held-calls';
import { RequestStateSeal } from '../relay/request-state.seal';
import type { McpCaller } from './mcp-caller';
import { McpServerBuilder } from './mcp-server.builder';

const SESSION = 'ses_mcp';

function aTool(id: string, outputSchema: Record<string, unknown> = { type: 'object' }): CatalogTool {
  return {
    id,
    name: id,
    description: `${id} tool`,
    inputSchema: { type: 'object' },
    outputSchema,
    permissions: ['tools:execute'],
    definition: { id, inputSchema: { type: 'object' }, outputSchema },
  } as unknown as CatalogTool;
}

const caller: McpCaller = {
  principal: {
    userId: 'usr_alice',
    email: 'alice@example.com',
    sessionId: SESSION,
    roles: ['user'],
    permissions: ['tools:execute'],
    via: 'jwt',
  } as Principal,
  context: { id: 'ctx_1', tools: ['tool_echo', 'tool_text'], settings: {} },
  contextTools: null,
  ipAddress: '203.0.113.7',
  userAgent: 'spec-agent',
};

/**
 * The builder with plain fakes: a tool index that knows a few tools, an execution pipeline whose
 * answer each test sets, and session activity that records counts. Its server is driven by the
 * official client over the SDK's in-memory transport. Constructor wiring lives here only.
 */
async function setup() {
  const tools = new Map([aTool('tool_echo'), aTool('tool_text', { type: 'string' })].map((tool) => [tool.id, tool]));
  const index = {
    // Two pages of one tool each.
    page: jest.fn((_caller: McpCaller, cursor?: string) => {
      const view = (tool: CatalogTool) => ({ name: tool.id, description: tool.description, inputSchema: { type: 'object' as const } });
      return cursor === 'next'
        ? { tools: [view(tools.get('tool_text')!)] }
        : { tools: [view(tools.get('tool_echo')!)], nextCursor: 'next' };
    }),
    find: (_caller: McpCaller, name: string) => tools.get(name),
  };
  const calls: Array<{ scope: ExecutionScope; toolId: string; request: ExecuteToolRequest; meta: ExecutionMeta }> = [];
  let answer: (meta: ExecutionMeta) => Promise<Partial<ToolExecution>> = async () => ({ status: 'completed', result: { echoed: 'hi' } });
  const executions = {
    execute: jest.fn(async (scope: ExecutionScope, toolId: string, request: ExecuteToolRequest, meta: ExecutionMeta) => {
      calls.push({ scope, toolId, request, meta });
      return { execution: await answer(meta), rateLimit: null, replayed: false };
    }),
  };
  const counts: Array<[string, Record<string, number>]> = [];
  const activity = { count: (sessionId: string, delta: Record<string, number>) => counts.push([sessionId, delta]) };
  // No upstream offers prompts, resources, completions or logging here: only tools.
  const federated = { capabilities: () => ({}), register: () => undefined, logLevelOf: () => null, noteCaller: () => undefined };
  // No upstream asks for client input here: the relay is exercised end to end in test/upstream/upstream-relay.e2e-spec.ts.
  // The real relays: no upstream asks for client input here (that is end to end in test/upstream/upstream-relay.e2e-spec.ts).
  const config = { secrets: { encryptionKey: 'k'.repeat(32) }, upstreams: { relayHoldMs: 60_000 } } as never;
  const holds = new HeldCalls(config);
  const relays = new AgentRequestRelays(
    new RequestStateSeal(config, new Clock()),
    { recordStandalone: async () => undefined } as never,
    holds,
    new HeldCallForwarding(new InProcessEventBus(), holds),
  );
  const builder = new McpServerBuilder(
    index as never,
    executions as never,
    activity as never,
    { version: '9.9.9' } as never,
    federated as never,
    relays as never,
  );

  const server = builder.build(
    () => caller,
    () => SESSION,
  );
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'spec', version: '1.0.0' });
  await client.connect(clientSide);
  return {
    client,
    index,
    calls,
    counts,
    answerWith: (next: (meta: ExecutionMeta) => Promise<Partial<ToolExecution>>) => (answer = next),
    close: () => client.close(),
  };
}

/** Sums what was counted in a session, per counter. */
const totals = (counts: Array<[string, Record<string, number>]>, sessionId: string) =>
  counts
    .filter(([id]) => id === sessionId)
    .reduce<Record<string, number>>((sum, [, delta]) => {
      for (const [key, value] of Object.entries(delta)) sum[key] = (sum[key] ?? 0) + value;
      return sum;
    }, {});

describe('McpServerBuilder', () => {
  let f: Awaited<ReturnType<typeof setup>>;
  beforeEach(async () => (f = await setup()));
  afterEach(() => f.close());

  it('names itself and answers tools/list from the index for the caller, page by page', async () => {
    expect(f.client.getServerVersion()).toMatchObject({ name: 'secure-mcp-server', version: '9.9.9' });
    // The client follows nextCursor by itself.
    const listed = await f.client.listTools();
    expect(listed.tools.map((tool) => tool.name)).toEqual(['tool_echo', 'tool_text']);
    expect(f.index.page.mock.calls.map(([who, cursor]) => [who.principal.userId, cursor])).toEqual([
      ['usr_alice', undefined],
      ['usr_alice', 'next'],
    ]);
  });

  it('runs tools/call through the execution pipeline as the caller, in its context, with where the call came from', async () => {
    await f.client.callTool({ name: 'tool_echo', arguments: { message: 'hi' } });
    expect(f.calls).toHaveLength(1);
    const [call] = f.calls;
    // The scope the edge resolved, handed on as it is: the pipeline looks nothing up again.
    expect(call.scope).toBe(caller);
    expect(call.toolId).toBe('tool_echo');
    expect(call.request).toEqual({ parameters: { message: 'hi' } });
    expect(call.meta).toMatchObject({ ipAddress: '203.0.113.7', userAgent: 'spec-agent', reportProgress: undefined });
    expect(call.meta.signal).toBeInstanceOf(AbortSignal);
  });

  it('returns a completed call as JSON text, and as structuredContent when the tool declares an object output', async () => {
    const structured = await f.client.callTool({ name: 'tool_echo', arguments: {} });
    expect(structured.isError).toBeFalsy();
    expect(structured.content).toEqual([{ type: 'text', text: '{"echoed":"hi"}' }]);
    expect(structured.structuredContent).toEqual({ echoed: 'hi' });

    f.answerWith(async () => ({ status: 'completed', result: 'plain' }));
    const text = await f.client.callTool({ name: 'tool_text', arguments: {} });
    expect(text.content).toEqual([{ type: 'text', text: '"plain"' }]);
    expect(text.structuredContent).toBeUndefined();
  });

  it('returns a failed run as a tool error result carrying the error code', async () => {
    f.answerWith(async () => ({ status: 'failed', result: null, error: { code: 'TIMEOUT', message: 'The tool did not finish' } }));
    const result = await f.client.callTool({ name: 'tool_echo', arguments: {} });
    expect(result.isError).toBe(true);
    expect(result.content).toEqual([{ type: 'text', text: 'TIMEOUT: The tool did not finish' }]);
    expect(result.structuredContent).toEqual({ error: { code: 'TIMEOUT', message: 'The tool did not finish' } });
  });

  it('returns a refusal of the pipeline as a tool error (with its retry hint) and counts an error in the session', async () => {
    f.answerWith(async () => {
      throw new AppException(ErrorCode.RATE_LIMIT_EXCEEDED, 'Rate limit for tool_echo exceeded', 429, [], { 'Retry-After': '42' });
    });
    const result = await f.client.callTool({ name: 'tool_echo', arguments: {} });
    expect(result.isError).toBe(true);
    expect(result.content).toEqual([
      { type: 'text', text: `${ErrorCode.RATE_LIMIT_EXCEEDED}: Rate limit for tool_echo exceeded (retry after 42 s)` },
    ]);
    expect(totals(f.counts, SESSION).errors).toBeGreaterThanOrEqual(1);
  });

  it('answers a tool the caller cannot see, or one the pipeline does not find, with a JSON-RPC invalid-params error', async () => {
    await expect(f.client.callTool({ name: 'tool_secret', arguments: {} })).rejects.toMatchObject({
      code: -32602,
      message: expect.stringContaining('Unknown tool: tool_secret'),
    });
    expect(f.calls).toHaveLength(0);
    f.answerWith(async () => {
      throw AppException.notFound('Tool not found');
    });
    await expect(f.client.callTool({ name: 'tool_echo', arguments: {} })).rejects.toMatchObject({ code: -32602 });
  });

  it("relays the pipeline's progress reports as notifications when the client asks for them", async () => {
    f.answerWith(async (meta) => {
      meta.reportProgress!(1, 3, 'one');
      meta.reportProgress!(2, 3, 'two');
      return { status: 'completed', result: {} };
    });
    const progress: Array<{ progress: number; total?: number; message?: string }> = [];
    await f.client.callTool(
      { name: 'tool_echo', arguments: {} },
      { onprogress: (p) => progress.push({ progress: p.progress, total: p.total, message: p.message }) },
    );
    expect(progress).toEqual([
      { progress: 1, total: 3, message: 'one' },
      { progress: 2, total: 3, message: 'two' },
    ]);
  });

  it('counts every message received and sent in the session', async () => {
    const before = totals(f.counts, SESSION);
    await f.client.callTool({ name: 'tool_echo', arguments: {} });
    const after = totals(f.counts, SESSION);
    expect((after.received ?? 0) - (before.received ?? 0)).toBe(1);
    expect((after.sent ?? 0) - (before.sent ?? 0)).toBe(1);
  });
});
