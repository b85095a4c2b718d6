import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { McpConnectionRegistry } from '@app/mcp-gateway';
import { http, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, updateTool } from '../tools/tools-test-kit';
import { Caller, connectHttp, createApiKey, createContext, eventually, initializeLegacy, login, mcpEnv, signUp } from './mcp-test-kit';
import { McpTestToolsModule } from './mcp-test-tools.module';

const BUILTINS = [
  'tool_echo',
  'tool_filesystem',
  'tool_http_fetch',
  'tool_json_query',
  'tool_progress',
  'tool_statistics',
  'tool_system_metrics',
];
/**
 * Without shared session denials (Redis) a replica learns that a session ended elsewhere when it
 * re-reads the row: per request at least every 15 s (SessionService), and every 30 s for all the
 * copies it holds (LegacySessionHandler's sweep).
 */
const REPLICA_CATCH_UP_MS = 45_000;

/**
 * Two replicas (two app instances) sharing one database; a 2025-era session opened on one is
 * served by the other. PostgreSQL only: the embedded PGlite database is owned by the one
 * process that opened its data directory, so two replicas cannot share it.
 */
describe('2025-era MCP sessions across replicas (postgres)', () => {
  // Both replicas must accept each other's tokens.
  const env = mcpEnv({ JWT_SECRET: randomBytes(32).toString('hex'), SESSION_FLUSH_MS: '100' });
  let a: TestApp;
  let b: TestApp;
  let db: DataSource;
  let admin: Caller;
  let user: Caller;
  let stranger: Caller;
  const clients: Client[] = [];
  const streams: Array<ReadableStreamDefaultReader<Uint8Array>> = [];

  const onA = () => `${a.baseUrl}/api/v1/mcp`;
  const onB = () => `${b.baseUrl}/api/v1/mcp`;
  const open = async (url: string, credential: string, protocolVersion = '2025-11-25') => {
    const connected = await connectHttp(url, credential, 'legacy', { protocolVersion });
    clients.push(connected.client);
    return { client: connected.client, sessionId: connected.transport.sessionId! };
  };
  /** A client of an existing session on another replica: the SDK skips `initialize` when given a session id. */
  const resume = async (url: string, credential: string, sessionId: string, protocolVersion = '2025-11-25') => {
    const transport = new StreamableHTTPClientTransport(new URL(url), {
      sessionId,
      protocolVersion,
      requestInit: { headers: { authorization: `Bearer ${credential}` } },
    });
    const client = new Client({ name: 'e2e-replica', version: '1.0.0' }, { supportedProtocolVersions: [protocolVersion] });
    await client.connect(transport);
    clients.push(client);
    return { client, transport };
  };
  const held = (t: TestApp, sessionId: string) => t.app.get(McpConnectionRegistry).get(sessionId) !== undefined;
  const sessionRow = async (sessionId: string) => {
    const [row] = await db.query(
      `SELECT status, end_reason, tool_executions, messages_received, messages_sent FROM sessions WHERE id = $1`,
      [sessionId],
    );
    return row as { status: string; end_reason: string | null; tool_executions: number; messages_received: number; messages_sent: number };
  };

  beforeAll(async () => {
    a = await startTestApp('postgres', { env, extraModules: [McpTestToolsModule] });
    b = await startTestApp('postgres', { env, extraModules: [McpTestToolsModule], reuse: a });
    // B's: it outlives A (the last test stops A).
    db = b.app.get(DataSource);
    admin = await login(a, ADMIN_EMAIL);
    user = await signUp(a, 'replicas-user@example.com');
    stranger = await signUp(a, 'replicas-stranger@example.com');
  });
  afterAll(async () => {
    for (const reader of streams) await reader.cancel().catch(() => undefined);
    for (const client of clients) await client.close().catch(() => undefined);
    await b?.stop();
    await a?.close();
  });

  it('serves a session opened on A on B (tools/list, tools/call with progress) while A keeps serving it', async () => {
    const first = await open(onA(), user.token, '2025-06-18');
    const [stored] = await db.query(`SELECT transport, credential, parent_session_id, handshake FROM mcp_sessions WHERE session_id = $1`, [
      first.sessionId,
    ]);
    expect(stored).toMatchObject({ transport: 'streamable-http', credential: 'jwt', parent_session_id: user.sessionId });
    expect(JSON.parse(stored.handshake)).toMatchObject({ protocolVersion: '2025-06-18', clientInfo: { name: 'e2e-legacy' } });
    expect(held(b, first.sessionId)).toBe(false);

    const { client } = await resume(onB(), user.token, first.sessionId, '2025-06-18');
    expect(await listEveryTool(client)).toEqual(BUILTINS);
    expect(held(b, first.sessionId)).toBe(true);
    const echoed = await client.callTool({ name: 'tool_echo', arguments: { message: 'on B' } });
    expect(echoed.structuredContent).toEqual({ message: 'on B' });
    const progress: number[] = [];
    const counted = await client.callTool(
      { name: 'tool_progress', arguments: { steps: 3, stepMs: 10 } },
      { onprogress: (p: { progress: number }) => progress.push(p.progress) },
    );
    expect(counted.structuredContent).toEqual({ counted: 3 });
    expect(progress).toEqual([1, 2, 3]);
    expect((await first.client.callTool({ name: 'tool_echo', arguments: { message: 'on A' } })).structuredContent).toEqual({
      message: 'on A',
    });

    // Both replicas count in the one session; the handshake B replayed is not the client's traffic.
    // Received: initialize + initialized on A, tools/list + two calls on B, one call on A.
    const row = await eventually(
      () => sessionRow(first.sessionId),
      (r) => r.tool_executions === 3 && r.messages_received >= 6,
    );
    expect(row).toMatchObject({ status: 'active', tool_executions: 3, messages_received: 6 });
  });

  it('opens the GET stream of a session on a replica that never saw it, and list_changed reaches it there', async () => {
    const { sessionId } = await open(onA(), user.token);
    const response = await fetch(onB(), {
      headers: {
        accept: 'text/event-stream',
        authorization: `Bearer ${user.token}`,
        'mcp-session-id': sessionId,
        'mcp-protocol-version': '2025-11-25',
      },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = response.body!.getReader();
    streams.push(reader);
    try {
      expect((await updateTool(b, admin, 'tool_statistics', { permissions: ['tools:execute', 'stats:run'] })).status).toBe(200);
      expect(await readUntil(reader, (text) => text.includes('notifications/tools/list_changed'))).toContain(
        'notifications/tools/list_changed',
      );
    } finally {
      expect((await updateTool(b, admin, 'tool_statistics', { permissions: null })).status).toBe(200);
    }
  });

  it('answers 404 on B to another user, credential or endpoint with the session id, before and after B adopted it', async () => {
    const { sessionId } = await open(onA(), user.token);
    const { key } = await createApiKey(a, user, { name: 'replica-key' });
    const contextId = await createContext(a, user, 'replica-ctx', ['tool_echo']);
    const inContext = `${b.baseUrl}/api/v1/contexts/${contextId}/mcp`;
    const refusedEverywhere = async () => {
      expect((await toolsList(onB(), stranger.token, sessionId)).status).toBe(404);
      expect((await toolsList(onB(), key, sessionId)).status).toBe(404);
      expect((await toolsList(inContext, user.token, sessionId)).status).toBe(404);
    };
    await refusedEverywhere();
    expect(held(b, sessionId)).toBe(false);
    // A login session's id is no MCP session.
    expect((await toolsList(onB(), user.token, user.sessionId)).status).toBe(404);

    expect((await toolsList(onB(), user.token, sessionId)).status).toBe(200);
    expect(held(b, sessionId)).toBe(true);
    await refusedEverywhere();
    expect((await toolsList(onB(), user.token, sessionId)).status).toBe(200);
    expect((await toolsList(onA(), user.token, sessionId)).status).toBe(200);
  });

  it(
    'ends the session everywhere on DELETE via B: the row and B at once, then A closes its copy and its stream',
    async () => {
      // Opened by hand: the SDK client would hold the session's one GET stream on A itself.
      const sessionId = await initializeLegacy(onA(), user.token);
      const stream = await fetch(onA(), {
        headers: {
          accept: 'text/event-stream',
          authorization: `Bearer ${user.token}`,
          'mcp-session-id': sessionId,
          'mcp-protocol-version': '2025-11-25',
        },
      });
      expect(stream.status).toBe(200);
      const reader = stream.body!.getReader();
      streams.push(reader);

      const { transport } = await resume(onB(), user.token, sessionId);
      await transport.terminateSession();
      expect(await sessionRow(sessionId)).toMatchObject({ status: 'terminated', end_reason: 'closed' });
      const audit = await db.query(`SELECT details FROM audit_logs WHERE action = 'mcp.session.closed' AND resource = $1`, [
        `session:${sessionId}`,
      ]);
      expect(audit).toEqual([{ details: expect.objectContaining({ reason: 'closed', how: 'DELETE' }) }]);
      expect(held(b, sessionId)).toBe(false);
      expect((await toolsList(onB(), user.token, sessionId)).status).toBe(404);

      // No request reaches A meanwhile: its sweep finds the session ended and closes the stream.
      expect(await readToEnd(reader, REPLICA_CATCH_UP_MS)).toBe('ended');
      expect(held(a, sessionId)).toBe(false);
      const onReplicaA = await eventually(
        () => toolsList(onA(), user.token, sessionId),
        (r) => r.status === 404,
        REPLICA_CATCH_UP_MS,
      );
      expect(onReplicaA.status).toBe(404);
    },
    2 * REPLICA_CATCH_UP_MS + 10_000,
  );

  it('does not adopt a session whose credential session has ended; it ends it instead', async () => {
    const second = await login(a, 'replicas-user@example.com');
    const { sessionId } = await open(onA(), second.token);
    // The login ends on B, which holds no copy of the MCP session to end with it.
    expect((await http(b.baseUrl, 'POST', '/api/v1/auth/logout', { token: second.token })).status).toBeLessThan(300);
    // Another token of the same user and credential kind may use the session, but not once its parent ended.
    expect((await toolsList(onB(), user.token, sessionId)).status).toBe(404);
    expect(await sessionRow(sessionId)).toMatchObject({ status: 'terminated', end_reason: 'parent_session_ended' });
  });

  it('keeps a session open when the replica that opened it shuts down; another replica carries on', async () => {
    const { sessionId } = await open(onA(), user.token);
    await a.stop();
    expect(await sessionRow(sessionId)).toMatchObject({ status: 'active' });
    const { client } = await resume(onB(), user.token, sessionId);
    expect((await client.callTool({ name: 'tool_echo', arguments: { message: 'after A stopped' } })).structuredContent).toEqual({
      message: 'after A stopped',
    });
  });
});

/**
 * Every tool name over every page, asked directly: a client that resumed a session never saw the
 * server's capabilities, so its listTools() would answer an empty list without asking.
 */
async function listEveryTool(client: Client): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = (await client.request({ method: 'tools/list', params: cursor ? { cursor } : {} })) as {
      tools: Array<{ name: string }>;
      nextCursor?: string;
    };
    names.push(...page.tools.map((tool) => tool.name));
    cursor = page.nextCursor;
  } while (cursor);
  return names;
}

async function toolsList(url: string, credential: string, sessionId: string): Promise<{ status: number }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${credential}`,
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
  });
  await response.text();
  return { status: response.status };
}

/** Reads an SSE body until `done` holds for what arrived (or fails after a while). */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  done: (text: string) => boolean,
  timeoutMs = 10_000,
): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + timeoutMs;
  while (!done(text)) {
    const next = await Promise.race([reader.read(), sleep(Math.max(0, deadline - Date.now())).then(() => 'timeout' as const)]);
    if (next === 'timeout' || next.done) break;
    text += decoder.decode(next.value, { stream: true });
  }
  return text;
}

/** Whether the stream ends (server closed it) within the time. */
async function readToEnd(reader: ReadableStreamDefaultReader<Uint8Array>, timeoutMs: number): Promise<'ended' | 'still open'> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const next = await Promise.race([
      reader.read().catch(() => ({ done: true as const, value: undefined })),
      sleep(Math.max(0, deadline - Date.now())).then(() => 'timeout' as const),
    ]);
    if (next === 'timeout') return 'still open';
    if (next.done) return 'ended';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
