import { Client } from '@modelcontextprotocol/client';
import { request as httpRequest } from 'node:http';
import { DataSource } from 'typeorm';
import { DATABASE_KINDS, http, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, updateTool } from '../tools/tools-test-kit';
import { Caller, connectHttp, createApiKey, createContext, eventually, listAll, login, mcpEnv, signUp } from './mcp-test-kit';
import { McpTestToolProvider, McpTestToolsModule } from './mcp-test-tools.module';

const ERAS = ['modern', 'legacy'] as const;
const BUILTINS = [
  'tool_echo',
  'tool_filesystem',
  'tool_http_fetch',
  'tool_json_query',
  'tool_progress',
  'tool_statistics',
  'tool_system_metrics',
];

/** Real peers: the official v2 client pinned to 2026-07-28, and on the 2025 era. */
describe.each(DATABASE_KINDS)('MCP over Streamable HTTP (%s)', (kind) => {
  let t: TestApp;
  let admin: Caller;
  let user: Caller;
  let db: DataSource;
  const open: Client[] = [];
  const connect = async (url: string, credential: string, era: (typeof ERAS)[number], protocolVersion?: string) => {
    const connected = await connectHttp(url, credential, era, { protocolVersion });
    open.push(connected.client);
    return connected;
  };

  beforeAll(async () => {
    t = await startTestApp(kind, { env: mcpEnv({ MCP_PAGE_SIZE: '3' }), extraModules: [McpTestToolsModule] });
    db = t.app.get(DataSource);
    admin = await login(t, ADMIN_EMAIL);
    user = await signUp(t, `mcp-user-${kind}@example.com`);
  });
  afterAll(async () => {
    for (const client of open) await client.close().catch(() => undefined);
    await t?.close();
  });

  describe.each(ERAS)('%s era', (era) => {
    it('lists every tool the caller may call over pages of 3, and calls one with a bearer token', async () => {
      const { client } = await connect(`${t.baseUrl}/api/v1/mcp`, user.token, era);
      expect(client.getProtocolEra()).toBe(era);
      expect(await listAll(client)).toEqual(BUILTINS);
      // listTools() without a cursor walks every page itself; one page by hand:
      const first = (await client.request({ method: 'tools/list', params: {} })) as Awaited<ReturnType<Client['listTools']>>;
      expect(first.tools.map((tool) => tool.name)).toEqual(BUILTINS.slice(0, 3));
      const second = await client.listTools({ cursor: first.nextCursor });
      expect(second.tools.map((tool) => tool.name)).toEqual(BUILTINS.slice(3, 6));
      expect(first.nextCursor).toEqual(expect.any(String));
      const echo = first.tools.find((tool) => tool.name === 'tool_echo');
      expect(echo).toMatchObject({
        title: 'Echo',
        inputSchema: { type: 'object', required: ['message'] },
        outputSchema: { type: 'object' },
        annotations: { readOnlyHint: true, destructiveHint: false },
      });
      const result = await client.callTool({ name: 'tool_echo', arguments: { message: `hello ${era}` } });
      expect(result.isError).toBeFalsy();
      expect(result.structuredContent).toEqual({ message: `hello ${era}` });
      expect(result.content).toEqual([{ type: 'text', text: JSON.stringify({ message: `hello ${era}` }) }]);
    });

    it('works the same with an agent API key, and audits the call', async () => {
      const { key } = await createApiKey(t, user, { name: `agent-${era}` });
      const { client } = await connect(`${t.baseUrl}/api/v1/mcp`, key, era);
      expect(await listAll(client)).toEqual(BUILTINS);
      const result = await client.callTool({ name: 'tool_echo', arguments: { message: 'from a key' } });
      expect(result.structuredContent).toEqual({ message: 'from a key' });
      const audits = await eventually(
        () => db.query(`SELECT result FROM audit_logs WHERE action = 'tool.execute' AND user_id = $1`, [user.userId]),
        (rows: unknown[]) => rows.length > 0,
      );
      expect(audits.length).toBeGreaterThan(0);
    });

    it('answers an unknown tool with invalid params, and refusals and failures with isError results', async () => {
      const { client } = await connect(`${t.baseUrl}/api/v1/mcp`, user.token, era);
      await expect(client.callTool({ name: 'tool_nope', arguments: {} })).rejects.toMatchObject({ code: -32602 });
      const invalid = await client.callTool({ name: 'tool_echo', arguments: { message: 42 } });
      expect(invalid.isError).toBe(true);
      expect((invalid.content as Array<{ type: string; text: string }>)[0]).toMatchObject({
        type: 'text',
        text: expect.stringMatching(/VALIDATION_ERROR/),
      });
      expect(invalid.structuredContent).toMatchObject({ error: { code: 'VALIDATION_ERROR' } });
    });

    it('relays progress while a tool runs, and a cancelled request stops the work', async () => {
      const { client } = await connect(`${t.baseUrl}/api/v1/mcp`, user.token, era);
      const progress: number[] = [];
      const done = await client.callTool(
        { name: 'tool_progress', arguments: { steps: 3, stepMs: 10 } },
        { onprogress: (p: { progress: number }) => progress.push(p.progress) },
      );
      expect(done.structuredContent).toEqual({ counted: 3 });
      expect(progress).toEqual([1, 2, 3]);

      const tools = t.app.get(McpTestToolProvider);
      const before = tools.aborted.length;
      const controller = new AbortController();
      const call = client.callTool(
        { name: 'tool_progress', arguments: { steps: 50, stepMs: 200 } },
        { signal: controller.signal, onprogress: () => controller.abort('user cancelled') },
      );
      await expect(call).rejects.toBeDefined();
      await eventually(
        async () => tools.aborted.length,
        (n) => n > before,
        5_000,
      );
      expect(tools.aborted.length).toBeGreaterThan(before);
    });
  });

  it("offers a context endpoint with only that context's tools, to its owner only; archived refuses", async () => {
    const contextId = await createContext(t, user, `ctx-${kind}`, ['tool_echo', 'tool_statistics']);
    const url = `${t.baseUrl}/api/v1/contexts/${contextId}/mcp`;
    for (const era of ERAS) {
      const { client } = await connect(url, user.token, era);
      expect(await listAll(client)).toEqual(['tool_echo', 'tool_statistics']);
      expect((await client.callTool({ name: 'tool_echo', arguments: { message: 'in context' } })).structuredContent).toEqual({
        message: 'in context',
      });
      await expect(client.callTool({ name: 'tool_json_query', arguments: {} })).rejects.toMatchObject({ code: -32602 });
      const { key } = await createApiKey(t, user, { name: `ctx-key-${era}` });
      const keyed = await connect(url, key, era);
      expect(await listAll(keyed.client)).toEqual(['tool_echo', 'tool_statistics']);
    }
    // An admin may use anyone's context; another user may not even learn it exists.
    expect(await listAll((await connect(url, admin.token, 'modern')).client)).toEqual(['tool_echo', 'tool_statistics']);
    const stranger = await signUp(t, `stranger-${kind}@example.com`);
    await expect(connect(url, stranger.token, 'legacy')).rejects.toBeDefined();
    expect((await rawInitialize(url, stranger.token)).status).toBe(404);

    expect(
      (await http(t.baseUrl, 'PUT', `/api/v1/contexts/${contextId}`, { token: user.token, body: { status: 'archived' } })).status,
    ).toBe(200);
    expect((await rawInitialize(url, user.token)).status).toBe(403);
  });

  it('binds an API key to its context: /api/v1/mcp then shows only that context, other contexts refuse', async () => {
    const bound = await createContext(t, user, `bound-${kind}`, ['tool_echo']);
    const other = await createContext(t, user, `other-${kind}`, ['tool_statistics']);
    const { key } = await createApiKey(t, user, { name: 'bound', contextId: bound });
    expect(await listAll((await connect(`${t.baseUrl}/api/v1/mcp`, key, 'modern')).client)).toEqual(['tool_echo']);
    expect((await rawInitialize(`${t.baseUrl}/api/v1/contexts/${other}/mcp`, key)).status).toBe(403);
    // Over REST too: only the context's tools run, and other contexts do not exist for the key.
    const run = (tool: string, parameters: Record<string, unknown>) =>
      http(t.baseUrl, 'POST', `/api/v1/tools/${tool}/execute`, { token: key, body: { parameters } });
    expect((await run('tool_echo', { message: 'bound' })).body.status).toBe('completed');
    expect((await run('tool_statistics', { operation: 'describe', values: [1] })).status).toBe(403);
    expect((await http(t.baseUrl, 'GET', `/api/v1/contexts/${other}`, { token: key })).status).toBe(404);
    expect((await http(t.baseUrl, 'GET', `/api/v1/contexts/${bound}`, { token: key })).status).toBe(200);
  });

  it('hides a tool from users without its permission, and refuses their calls; list_changed tells the 2025 session', async () => {
    const { client } = await connect(`${t.baseUrl}/api/v1/mcp`, user.token, 'legacy');
    const changed = new Promise<void>((resolve) => client.setNotificationHandler('notifications/tools/list_changed', () => resolve()));
    expect((await updateTool(t, admin, 'tool_statistics', { permissions: ['tools:execute', 'stats:run'] })).status).toBe(200);
    await changed;
    expect(await listAll(client)).not.toContain('tool_statistics');
    const refused = await client.callTool({ name: 'tool_statistics', arguments: { values: [1, 2], operations: ['mean'] } });
    expect(refused.isError).toBe(true);
    expect((refused.content as Array<{ type: string; text: string }>)[0]).toMatchObject({
      type: 'text',
      text: expect.stringMatching(/stats:run/),
    });
    // The administrator holds no such grant either, but an admin's grant makes it visible.
    expect(await listAll((await connect(`${t.baseUrl}/api/v1/mcp`, admin.token, 'modern')).client)).not.toContain('tool_statistics');
    expect((await updateTool(t, admin, 'tool_statistics', { permissions: null })).status).toBe(200);
    await eventually(
      () => listAll(client),
      (names) => names.includes('tool_statistics'),
    );
  });

  it('counts messages, executions and errors in the MCP session, which is one of our sessions', async () => {
    const { client, transport } = await connect(`${t.baseUrl}/api/v1/mcp`, user.token, 'legacy');
    const sessionId = transport.sessionId!;
    expect(sessionId).toMatch(/^ses_/);
    await client.callTool({ name: 'tool_echo', arguments: { message: 'one' } });
    await client.callTool({ name: 'tool_echo', arguments: { message: 2 } });
    const sessions = await http(t.baseUrl, 'GET', '/api/v1/sessions', { token: user.token });
    const listed = sessions.body.sessions.find((s: { id: string }) => s.id === sessionId);
    expect(listed).toMatchObject({ connectionType: 'http', status: 'active' });
    expect(listed.metrics.messagesReceived).toBeGreaterThanOrEqual(4);
    expect(listed.metrics.messagesSent).toBeGreaterThanOrEqual(3);
    expect(listed.metrics.toolExecutions).toBe(1);
    expect(listed.metrics.errors).toBe(1);
  });

  it('ends a 2025 session by DELETE or by POST /sessions/{id}/terminate; its id then answers 404', async () => {
    const first = await connect(`${t.baseUrl}/api/v1/mcp`, user.token, 'legacy');
    const deleted = first.transport.sessionId!;
    await first.transport.terminateSession();
    expect(
      (await rawPost(`${t.baseUrl}/api/v1/mcp`, user.token, { 'mcp-session-id': deleted, 'mcp-protocol-version': '2025-11-25' })).status,
    ).toBe(404);

    const second = await connect(`${t.baseUrl}/api/v1/mcp`, user.token, 'legacy', '2025-06-18');
    const terminated = second.transport.sessionId!;
    const res = await http(t.baseUrl, 'POST', `/api/v1/sessions/${terminated}/terminate`, { token: user.token });
    expect(res.status).toBe(200);
    expect(
      (await rawPost(`${t.baseUrl}/api/v1/mcp`, user.token, { 'mcp-session-id': terminated, 'mcp-protocol-version': '2025-06-18' })).status,
    ).toBe(404);
    await expect(second.client.listTools()).rejects.toBeDefined();
    // Without a session id a 2025 request is a bad request.
    expect((await rawPost(`${t.baseUrl}/api/v1/mcp`, user.token, {})).status).toBe(400);
  });

  it('refuses a foreign Origin or Host (403), tokens in the URL, and answers 401 with the resource metadata pointer', async () => {
    expect((await rawInitialize(`${t.baseUrl}/api/v1/mcp`, user.token, { origin: 'https://evil.example' })).status).toBe(403);
    expect(await statusWithHost(`${t.baseUrl}/api/v1/mcp`, user.token, 'evil.example')).toBe(403);
    expect(await statusWithHost(`${t.baseUrl}/api/v1/mcp`, user.token, 'localhost:1234')).toBe(200);
    expect((await rawInitialize(`${t.baseUrl}/api/v1/mcp`, user.token, { origin: t.baseUrl })).status).toBe(200);
    expect((await rawInitialize(`${t.baseUrl}/api/v1/mcp`, user.token, { origin: 'http://localhost:5173' })).status).toBe(403);

    const inUrl = await fetch(`${t.baseUrl}/api/v1/mcp?access_token=${user.token}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(inUrl.status).toBe(401);
    const inUrlWithHeader = await rawInitialize(`${t.baseUrl}/api/v1/mcp?api_key=x`, user.token);
    expect(inUrlWithHeader.status).toBe(401);
    expect((await http(t.baseUrl, 'GET', `/api/v1/tools?access_token=${user.token}`)).status).toBe(401);

    const anonymous = await fetch(`${t.baseUrl}/api/v1/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="${t.baseUrl}/.well-known/oauth-protected-resource", scope="mcp:tools"`,
    );
    const metadata = await http(t.baseUrl, 'GET', '/.well-known/oauth-protected-resource');
    expect(metadata.status).toBe(200);
    expect(metadata.body).toMatchObject({ resource: `${t.baseUrl}/api/v1/mcp`, bearer_methods_supported: ['header'] });
  });

  it('manages API keys: shown once, listed without the key, narrowed permissions, revocation closes access', async () => {
    const created = await http(t.baseUrl, 'POST', '/api/v1/auth/api-keys', {
      token: user.token,
      body: { name: 'reader', permissions: ['tools:read'] },
    });
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^smcp_[A-Za-z0-9_-]{43}$/);
    const listed = await http(t.baseUrl, 'GET', '/api/v1/auth/api-keys', { token: user.token });
    const entry = listed.body.apiKeys.find((k: { id: string }) => k.id === created.body.id);
    expect(entry).toMatchObject({ name: 'reader', permissions: ['tools:read'], status: 'active' });
    expect(JSON.stringify(listed.body)).not.toContain(created.body.key);
    const [stored] = await db.query(`SELECT key_hash FROM api_keys WHERE id = $1`, [created.body.id]);
    expect(stored.key_hash).not.toContain(created.body.key.slice(5));

    // Without tools:execute the key sees no tool and cannot call one; REST reads still work.
    expect(await listAll((await connect(`${t.baseUrl}/api/v1/mcp`, created.body.key, 'modern')).client)).toEqual([]);
    expect((await http(t.baseUrl, 'GET', '/api/v1/tools', { token: created.body.key })).status).toBe(200);
    expect(
      (
        await http(t.baseUrl, 'POST', '/api/v1/tools/tool_echo/execute', {
          token: created.body.key,
          body: { parameters: { message: 'x' } },
        })
      ).status,
    ).toBe(403);
    // Not a subset of the owner's permissions; keys cannot manage keys.
    expect(
      (
        await http(t.baseUrl, 'POST', '/api/v1/auth/api-keys', {
          token: user.token,
          body: { name: 'x', permissions: ['admin:users:write'] },
        })
      ).status,
    ).toBe(400);
    const full = await createApiKey(t, user, { name: 'full' });
    expect((await http(t.baseUrl, 'POST', '/api/v1/auth/api-keys', { token: full.key, body: { name: 'y' } })).status).toBe(403);

    const { client } = await connect(`${t.baseUrl}/api/v1/mcp`, full.key, 'legacy');
    expect((await client.callTool({ name: 'tool_echo', arguments: { message: 'ok' } })).isError).toBeFalsy();
    expect((await http(t.baseUrl, 'DELETE', `/api/v1/auth/api-keys/${full.id}`, { token: user.token })).body.status).toBe('revoked');
    await expect(client.listTools()).rejects.toBeDefined();
    expect((await rawInitialize(`${t.baseUrl}/api/v1/mcp`, full.key)).status).toBe(401);
    const audit = await db.query(`SELECT action FROM audit_logs WHERE resource = $1 ORDER BY seq`, [`apikey:${full.id}`]);
    expect(audit.map((row: { action: string }) => row.action)).toEqual([
      'auth.apikey.created',
      'auth.apikey.session_opened',
      'auth.apikey.revoked',
    ]);
  });
});

function initializeBody(): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
  });
}

async function rawInitialize(url: string, credential: string, headers: Record<string, string> = {}): Promise<Response> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${credential}`,
      ...headers,
    },
    body: initializeBody(),
  });
  await response.body?.cancel();
  return response;
}

async function rawPost(url: string, credential: string, headers: Record<string, string>): Promise<Response> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${credential}`,
      ...headers,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list', params: {} }),
  });
  await response.body?.cancel();
  return response;
}

/** fetch() will not send a Host of our choosing; node:http will. */
function statusWithHost(url: string, credential: string, host: string): Promise<number> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        hostname: target.hostname,
        port: target.port,
        path: target.pathname,
        method: 'POST',
        headers: {
          host,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          authorization: `Bearer ${credential}`,
        },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(initializeBody());
  });
}
