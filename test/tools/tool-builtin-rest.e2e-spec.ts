import { existsSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { FILESYSTEM_WRITE_PERMISSION } from '@app/tools';
import { DATABASE_KINDS, http, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, auditFor, Caller, execute, login, signUp, toolsEnv } from './tools-test-kit';

/**
 * Every built-in tool once through REST: one call that completes and one that fails, each
 * leaving its execution row and audit entry. (The tools' own suites cover their edge cases.)
 */
describe.each(DATABASE_KINDS)('built-in tools through REST (%s)', (kind) => {
  let t: TestApp;
  let db: DataSource;
  let user: Caller;
  let writer: Caller;
  let upstream: Server;
  let upstreamUrl: string;

  beforeAll(async () => {
    upstream = createServer((request, response) => {
      response.setHeader('content-type', 'text/plain');
      response.end(`hello from ${request.method} ${request.url}`);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    t = await startTestApp(kind, {
      env: toolsEnv({ TOOLS_HTTP_ALLOWED_HOSTS: '127.0.0.1,169.254.169.254', TOOLS_HTTP_ALLOW_PRIVATE: 'true' }),
    });
    db = t.app.get(DataSource);
    user = await signUp(t, 'builtin.user@example.com');
    const admin = await login(t, ADMIN_EMAIL);
    const writerAccount = await signUp(t, 'builtin.writer@example.com');
    const granted = await http(t.baseUrl, 'PUT', `/api/v1/admin/users/${writerAccount.userId}/roles`, {
      token: admin.token,
      body: { roles: ['user'], permissions: [FILESYSTEM_WRITE_PERMISSION] },
    });
    expect(granted.status).toBe(200);
    writer = await login(t, 'builtin.writer@example.com');
  });
  afterAll(async () => {
    await t?.close();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  /** Runs a call that must answer 200 and be recorded, and returns its body. */
  const run = async (caller: Caller, toolId: string, parameters: Record<string, unknown>, options?: Record<string, unknown>) => {
    const res = await execute(t, caller, toolId, { parameters, ...(options ? { options } : {}) });
    expect({ toolId, status: res.status }).toEqual({ toolId, status: 200 });
    expect(await auditFor(db, res.body.executionId)).toHaveLength(1);
    return res.body;
  };

  it('tool_echo', async () => {
    expect(await run(user, 'tool_echo', { message: 'hi' })).toMatchObject({ status: 'completed', result: { message: 'hi' } });
    expect(await run(user, 'tool_echo', { message: 'hi', delayMs: 10_000 }, { timeout: 100 })).toMatchObject({
      status: 'failed',
      error: { code: 'TIMEOUT' },
    });
  });

  it('tool_filesystem', async () => {
    const written = await run(writer, 'tool_filesystem', {
      operation: 'write',
      path: 'notes/today.txt',
      content: 'remember',
      createDirectories: true,
    });
    expect(written).toMatchObject({ status: 'completed', result: { operation: 'write', created: true } });
    expect(await run(user, 'tool_filesystem', { operation: 'read', path: 'notes/today.txt' })).toMatchObject({
      status: 'completed',
      result: { operation: 'read', content: 'remember' },
    });
    expect(existsSync(join(t.config.tools.sandboxRoot, 'notes', 'today.txt'))).toBe(true);

    expect(await run(user, 'tool_filesystem', { operation: 'read', path: '../../etc/passwd' })).toMatchObject({
      status: 'failed',
      error: { code: 'SANDBOX_VIOLATION' },
    });
    // Writing needs its own permission, checked by the tool with the caller's permissions.
    expect(await run(user, 'tool_filesystem', { operation: 'write', path: 'x.txt', content: 'x' })).toMatchObject({
      status: 'failed',
      error: { code: 'PERMISSION_DENIED' },
    });
  });

  it('tool_json_query', async () => {
    expect(
      await run(user, 'tool_json_query', {
        expression: 'people[?age > `30`].name',
        document: {
          people: [
            { name: 'a', age: 40 },
            { name: 'b', age: 20 },
          ],
        },
      }),
    ).toMatchObject({
      status: 'completed',
      result: { result: ['a'] },
    });
    expect(await run(user, 'tool_json_query', { expression: 'people[?', document: {} })).toMatchObject({
      status: 'failed',
      error: { code: 'INVALID_INPUT' },
    });
  });

  it('tool_http_fetch', async () => {
    const fetched = await run(user, 'tool_http_fetch', { url: `${upstreamUrl}/ping` });
    expect(fetched).toMatchObject({ status: 'completed', result: { status: 200, body: 'hello from GET /ping' } });
    expect(await run(user, 'tool_http_fetch', { url: 'http://not-allowed.example.com/' })).toMatchObject({
      status: 'failed',
      error: { code: 'HOST_NOT_ALLOWED' },
    });
    // Allow-listed, and private addresses allowed for this suite: cloud metadata stays refused.
    expect(await run(user, 'tool_http_fetch', { url: 'http://169.254.169.254/latest/meta-data/' })).toMatchObject({
      status: 'failed',
      error: { code: 'FORBIDDEN_ADDRESS' },
    });
  });

  it('tool_statistics', async () => {
    const described = await run(user, 'tool_statistics', { operation: 'describe', values: [1, 2, 3, 4] });
    expect(described).toMatchObject({ status: 'completed', result: { operation: 'describe', count: 4, mean: 2.5 } });
    const aggregated = await run(user, 'tool_statistics', {
      operation: 'aggregate',
      records: [
        { k: 'a', v: 1 },
        { k: 'a', v: 3 },
        { k: 'b', v: 5 },
      ],
      groupBy: 'k',
      field: 'v',
    });
    expect(aggregated.status).toBe('completed');
    expect(await run(user, 'tool_statistics', { operation: 'describe', values: [1e308, 1e308] })).toMatchObject({
      status: 'failed',
      error: { code: 'INVALID_INPUT' },
    });
  });

  it('tool_system_metrics', async () => {
    const metrics = await run(user, 'tool_system_metrics', { sampleMs: 0 });
    expect(metrics.status).toBe('completed');
    // The call itself is in flight while it measures.
    expect(metrics.result.gateway.executionsInFlight).toBeGreaterThanOrEqual(1);
    const refused = await execute(t, user, 'tool_system_metrics', { parameters: { sampleMs: 60_000 } });
    expect(refused.status).toBe(400);
    expect(refused.body.details.map((d: { field: string }) => d.field)).toEqual(['parameters.sampleMs']);
  });
});
