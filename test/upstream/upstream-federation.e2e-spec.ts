import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { DATABASE_KINDS, http, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, auditFor, Caller, execute, executionRow, login, signUp, toolsEnv } from '../tools/tools-test-kit';
import {
  directClient,
  relayedMeta,
  EVERYTHING,
  EVERYTHING_TOOLS,
  freePort,
  HttpUpstream,
  listTools,
  mcpClient,
  mcpToolNames,
  startEverythingHttp,
  stdioUpstream,
  upstreamHealth,
  waitFor,
  writeUpstreamsFile,
} from './upstream-test-kit';

/**
 * @modelcontextprotocol/server-everything federated twice: as a stdio child (no shell, only the
 * environment it is given) and as a Streamable HTTP server on a loopback port. Its tools join
 * the catalogue under each upstream's prefix and run through the real pipeline.
 */
describe.each(DATABASE_KINDS)('Federated upstream MCP servers (%s)', (kind) => {
  let t: TestApp;
  let remote: HttpUpstream;
  let admin: Caller;
  let user: Caller;
  let db: DataSource;

  beforeAll(async () => {
    remote = await startEverythingHttp(await freePort());
    const dir = mkdtempSync(join(tmpdir(), 'smcp-upstreams-'));
    const file = writeUpstreamsFile(dir, [
      stdioUpstream('everything', EVERYTHING, ['stdio'], { category: 'data', env: { EVERYTHING_MARKER: 'given-by-config' } }),
      {
        name: 'remote',
        transport: 'http',
        url: remote.url,
        headers: { Authorization: { fromEnv: 'UPSTREAM_REMOTE_TOKEN', prefix: 'Bearer ' } },
        idPrefix: 'remote:',
        category: 'analytics',
        // executions:read: developers and admins hold it, plain users do not.
        permissions: ['tools:execute', 'executions:read'],
      },
    ]);
    t = await startTestApp(kind, { env: toolsEnv({ MCP_UPSTREAMS_FILE: file, UPSTREAM_REMOTE_TOKEN: 'gateway-credential-for-remote' }) });
    db = t.app.get(DataSource);
    admin = await login(t, ADMIN_EMAIL);
    user = await signUp(t, `fed-${kind}@example.com`);
  });

  afterAll(async () => {
    await t?.close();
    await remote?.kill();
  });

  it("lists both upstreams' tools under their prefixes, with the configured category and permissions", async () => {
    const tools = await waitFor('both upstreams listed', async () => {
      const all = await listTools(t, admin);
      const upstream = all.filter((tool) => tool.id.startsWith('everything.') || tool.id.startsWith('remote:'));
      return upstream.length === 2 * EVERYTHING_TOOLS.length ? all : undefined;
    });
    const ids = tools.map((tool) => tool.id);
    for (const name of EVERYTHING_TOOLS) {
      expect(ids).toContain(`everything.${name}`);
      expect(ids).toContain(`remote:${name}`);
    }
    expect(ids).toContain('tool_echo'); // the built-in tools are still there
    const echo = tools.find((tool) => tool.id === 'everything.echo')!;
    expect(echo).toMatchObject({ name: 'echo', category: 'data', enabled: true, permissions: ['tools:execute'] });
    expect(echo.schema.input.properties.message).toBeDefined();
    const remoteEcho = tools.find((tool) => tool.id === 'remote:echo')!;
    expect(remoteEcho).toMatchObject({ category: 'analytics', permissions: ['executions:read', 'tools:execute'] });
    // REST's result of a federated tool is the upstream's result itself: content blocks, structuredContent, isError, _meta.
    expect(Object.keys(tools.find((tool) => tool.id === 'everything.get-structured-content')!.schema.output.properties).sort()).toEqual([
      '_meta',
      'content',
      'isError',
      'structuredContent',
    ]);
  });

  it('runs a stdio upstream tool through the pipeline: execution row and audit entry', async () => {
    const res = await execute(t, user, 'everything.echo', { parameters: { message: 'hello upstream' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ toolId: 'everything.echo', status: 'completed' });
    expect(res.body.result).toEqual({ content: [{ type: 'text', text: 'Echo: hello upstream' }] });
    const row = await executionRow(db, res.body.executionId);
    expect(row).toMatchObject({ tool_id: 'everything.echo', user_id: user.userId, status: 'completed' });
    const audit = await auditFor(db, res.body.executionId);
    expect(audit).toEqual([expect.objectContaining({ action: 'tool.execute', result: 'success', user_id: user.userId })]);
  });

  it("runs the Streamable HTTP upstream's tools, under their own permissions", async () => {
    const ok = await execute(t, admin, 'remote:echo', { parameters: { message: 'over http' } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'completed', result: { content: [{ type: 'text', text: 'Echo: over http' }] } });
    const refused = await execute(t, user, 'remote:echo', { parameters: { message: 'not for you' } });
    expect(refused.status).toBe(403);
    expect(refused.body.message).toContain('executions:read');
  });

  it("passes structured content through and checks it against the upstream's output schema", async () => {
    const res = await execute(t, user, 'everything.get-structured-content', { parameters: { location: 'Chicago' } });
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('completed');
    expect(res.body.result.structuredContent).toEqual({
      temperature: expect.any(Number),
      conditions: expect.any(String),
      humidity: expect.any(Number),
    });
    expect(res.body.result.content).toEqual([{ type: 'text', text: JSON.stringify(res.body.result.structuredContent) }]);
    const sum = await execute(t, user, 'remote:get-sum', { parameters: { a: 2, b: 40 } });
    expect(sum.status).toBe(403); // remote needs executions:read
    const local = await execute(t, user, 'everything.get-sum', { parameters: { a: 2, b: 40 } });
    expect(local.body.result.content[0].text).toContain('42');
  });

  it("validates parameters against the upstream's input schema before calling it", async () => {
    const res = await execute(t, user, 'everything.get-sum', { parameters: { a: 'two', b: 40 } });
    expect(res.status).toBe(400);
    expect(res.body.details).toEqual([expect.objectContaining({ field: 'parameters.a' })]);
  });

  it('serves the federated tools to MCP agents: tools/list and tools/call through /api/v1/mcp', async () => {
    const client = await mcpClient(t, user);
    try {
      const names = await mcpToolNames(client);
      expect(names).toContain('everything.echo');
      expect(names).not.toContain('remote:echo'); // the user lacks executions:read
      const failed = await client.callTool({ name: 'everything.get-sum', arguments: { a: 'x', b: 1 } });
      expect(failed.isError).toBe(true);
    } finally {
      await client.close();
    }
  });

  /** Content with the time of day server-everything writes into generated resources replaced by a marker. */
  const withoutClock = (content: unknown): unknown => {
    const clock = /\d{1,2}:\d{2}:\d{2}(\s?[AP]M)?/g;
    return (content as Array<Record<string, unknown>>).map((block) => {
      const resource = block.resource as { blob?: string; text?: string } | undefined;
      if (!resource) return block;
      const fixed = { ...resource };
      if (typeof fixed.blob === 'string') fixed.blob = Buffer.from(fixed.blob, 'base64').toString('utf8').replace(clock, '<time>');
      if (typeof fixed.text === 'string') fixed.text = fixed.text.replace(clock, '<time>');
      return { ...block, resource: fixed };
    });
  };

  it.each([
    ['echo', { message: 'via mcp' }],
    ['get-tiny-image', {}],
    ['get-annotated-message', { messageType: 'error', includeImage: true }],
    ['get-resource-links', { count: 4 }],
    ['get-resource-reference', { resourceType: 'Blob', resourceId: 2 }],
    ['get-structured-content', { location: 'Chicago' }],
  ])('relays %s to MCP agents exactly as the upstream answers it', async (name, args) => {
    const direct = await directClient(remote.url, 'gateway-credential-for-remote');
    const client = await mcpClient(t, admin);
    try {
      const expected = await direct.callTool({ name, arguments: args });
      const actual = await client.callTool({ name: `remote:${name}`, arguments: args });
      expect(Array.isArray(expected.content) && expected.content.length > 0).toBe(true);
      // server-everything stamps a resource with the wall-clock second it made it: the two calls may straddle one.
      expect(withoutClock(actual.content)).toEqual(withoutClock(expected.content));
      expect(actual.structuredContent).toEqual(expected.structuredContent);
      expect(actual.isError).toEqual(expected.isError);
      // The upstream's _meta; the gateway (2026-07-28 towards this agent) adds only its own serverInfo.
      expect(relayedMeta(actual._meta)).toEqual(relayedMeta(expected._meta));
    } finally {
      await client.close();
      await direct.close();
    }
  });

  it('gives a stdio upstream only the environment it is configured with', async () => {
    const res = await execute(t, user, 'everything.get-env', { parameters: {} });
    expect(res.body.status).toBe('completed');
    const env = JSON.parse(res.body.result.content[0].text);
    // No HOME, PATH, USER or SHELL of the gateway, and none of its secrets.
    expect(env).toEqual({ EVERYTHING_MARKER: 'given-by-config' });
  });

  it('shows each upstream to admins in /admin/health, and only its status in the public /health/detailed', async () => {
    const everything = await upstreamHealth(t, 'everything');
    const http2 = await upstreamHealth(t, 'remote');
    expect(everything).toMatchObject({
      status: 'healthy',
      name: 'everything',
      transport: 'stdio',
      state: 'connected',
      toolCount: EVERYTHING_TOOLS.length,
      lastError: null,
    });
    expect(http2).toMatchObject({
      status: 'healthy',
      name: 'remote',
      transport: 'http',
      state: 'connected',
      toolCount: EVERYTHING_TOOLS.length,
    });
    expect(Date.parse(String(everything!.lastConnectedAt))).not.toBeNaN();
    const publicHealth = await http(t.baseUrl, 'GET', '/api/v1/health/detailed');
    // The public answer names no upstream: one entry for all of them, with the worst status.
    expect(publicHealth.body.components.upstream).toEqual({ status: 'healthy' });
    expect(Object.keys(publicHealth.body.components).filter((name) => name.startsWith('upstream:'))).toEqual([]);
    // Neither shows URLs, commands or credentials.
    const text = (await http(t.baseUrl, 'GET', '/api/v1/admin/health', { token: admin.token })).text + publicHealth.text;
    expect(text).not.toContain(String(remote.port));
    expect(text).not.toContain('gateway-credential-for-remote');
    expect(text).not.toContain('server-everything');
  });
});
