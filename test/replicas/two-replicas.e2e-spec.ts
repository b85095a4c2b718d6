import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { Client as PgClient } from 'pg';
import { installWebSocketGlobal } from '../mcp/mcp-test-kit';
import { ServerProcess } from '../support/server-process';
import { ReplicaSet } from './replica-kit';
import { waitFor } from '../support/polling';
import type { TestDatabase } from '../support/test-database';
import { http, TestApp } from '../support/test-app';
import { Caller, execute, login, signUp, toolsEnv, updateTool, waitForExecution } from '../tools/tools-test-kit';

installWebSocketGlobal();

/**
 * Two replicas as an operator runs them: two server PROCESSES (the built server, as `npm start`
 * runs it) on different ports, sharing the machine's PostgreSQL and Redis and the deployment's
 * secrets. PostgreSQL only: the embedded database belongs to one process by design.
 */
describe('two replicas sharing PostgreSQL and Redis', () => {
  let database: TestDatabase;
  let env: Record<string, string>;
  let a: ServerProcess;
  let b: ServerProcess;
  const replicas = new ReplicaSet();
  const start = (extra: Record<string, string> = {}) => replicas.start({ ...env, ...extra });
  const asApp = (server: ServerProcess) => ({ baseUrl: server.baseUrl }) as TestApp;

  beforeAll(async () => {
    ({ env, database } = await replicas.deployment({
      // A lease that runs out soon after a dead process's call would have timed out.
      TOOLS_QUEUE_LEASE_GRACE_MS: '500',
      TOOLS_QUEUE_POLL_MS: '200',
    }));
    a = await start();
    // B looks at the queue less often than A, which looks at once when it accepts a call: the
    // async execution below is claimed by A (the test checks), and B takes it up after A dies.
    b = await start({ TOOLS_QUEUE_POLL_MS: '2000' });
  }, 120_000);

  afterAll(() => replicas.stopAll());

  it('shares a per-tool rate limit: the N+1st call is refused whichever replica it reaches', async () => {
    const admin = await login(asApp(a), toolsEnv().ADMIN_EMAIL);
    expect((await updateTool(asApp(a), admin, 'tool_echo', { rateLimit: { requests: 4, window: '1m' } })).status).toBe(200);
    const user = await signUp(asApp(b), 'limited@example.com');
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const replica = i % 2 === 0 ? a : b;
      statuses.push((await execute(asApp(replica), user, 'tool_echo', { parameters: { message: `call ${i}` } })).status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    expect((await updateTool(asApp(b), admin, 'tool_echo', { rateLimit: null })).status).toBe(200);
  });

  it('refuses a session terminated through A on B at once, and closes its WebSocket on B', async () => {
    const user = await signUp(asApp(a), 'terminated@example.com');
    const ticket = await http(b.baseUrl, 'POST', '/api/v1/mcp/tickets', { token: user.token });
    expect(ticket.status).toBe(200);
    const transport = new WebSocketClientTransport(
      new URL(`${b.baseUrl.replace('http://', 'ws://')}/api/v1/mcp/ws?ticket=${ticket.body.ticket}`),
    );
    const client = new V1Client({ name: 'replica-ws', version: '1.0.0' });
    await client.connect(transport);
    expect((await client.callTool({ name: 'tool_echo', arguments: { message: 'on B' } })).structuredContent).toEqual({ message: 'on B' });
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      (transport as unknown as { _socket: WebSocket })._socket.addEventListener('close', (event) =>
        resolve({ code: event.code, reason: String(event.reason) }),
      ),
    );

    expect((await http(b.baseUrl, 'GET', '/api/v1/auth/me', { token: user.token })).status).toBe(200);
    expect((await http(a.baseUrl, 'POST', `/api/v1/sessions/${user.sessionId}/terminate`, { token: user.token })).status).toBe(200);
    // The very next request on B, with no pause.
    const refused = await http(b.baseUrl, 'GET', '/api/v1/auth/me', { token: user.token });
    expect(refused.status).toBe(401);
    expect(refused.body.error).toBeDefined();

    const close = await Promise.race([closed, new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000))]);
    expect(close).not.toBeNull();
    expect(close!.code).toBe(4001);
  });

  it('continues on B an MCP session (2025 era) opened on A', async () => {
    const user = await signUp(asApp(a), 'mcp-session@example.com');
    const headers = { authorization: `Bearer ${user.token}` };
    const onA = new StreamableHTTPClientTransport(new URL(`${a.baseUrl}/api/v1/mcp`), { requestInit: { headers } });
    const clientA = new Client({ name: 'replica-a', version: '1.0.0' }, { supportedProtocolVersions: ['2025-11-25'] });
    await clientA.connect(onA);
    const sessionId = onA.sessionId!;
    expect(sessionId).toBeTruthy();
    expect((await clientA.callTool({ name: 'tool_echo', arguments: { message: 'on A' } })).structuredContent).toEqual({ message: 'on A' });

    // The same session, its requests now reaching B (as a load balancer without affinity would send them).
    const onB = new StreamableHTTPClientTransport(new URL(`${b.baseUrl}/api/v1/mcp`), { requestInit: { headers }, sessionId });
    onB.setProtocolVersion('2025-11-25');
    const messages: unknown[] = [];
    onB.onmessage = (message) => messages.push(message);
    await onB.start();
    await onB.send({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'tool_echo', arguments: { message: 'on B' } } });
    const answer = await waitFor(
      'the answer to request 7',
      () => messages.find((m) => (m as { id?: number }).id === 7) as { result?: { structuredContent?: unknown } } | undefined,
    );
    expect(answer.result?.structuredContent).toEqual({ message: 'on B' });

    // Ended through B: A no longer serves it.
    await onB.terminateSession();
    const afterEnd = await fetch(`${a.baseUrl}/api/v1/mcp`, {
      method: 'POST',
      headers: {
        ...headers,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': sessionId,
        'mcp-protocol-version': '2025-11-25',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/list', params: {} }),
    });
    expect(afterEnd.status).toBe(404);
    await onA.close().catch(() => undefined);
  });

  it('completes on B an async execution accepted by A whose process was killed', async () => {
    const user: Caller = await signUp(asApp(a), 'async-owner@example.com');
    const accepted = await execute(asApp(a), user, 'tool_echo', {
      parameters: { message: 'survives', delayMs: 3_000 },
      options: { async: true, timeout: 5_000 },
    });
    expect(accepted.status).toBe(200);
    expect(accepted.body.status).toBe('pending');
    const id: string = accepted.body.executionId;
    const pg = new PgClient({ connectionString: database.url });
    await pg.connect();
    try {
      // Wait until A has claimed it (it is running on A), then kill A without a chance to clean up.
      const claimed = await waitFor('A to claim the execution', async () => {
        const { rows } = await pg.query('SELECT status, attempts FROM tool_executions WHERE id = $1', [id]);
        return rows[0]?.status === 'running' ? rows[0] : undefined;
      });
      expect(claimed.attempts).toBe(1);
      a.child.kill('SIGKILL');
      await a.exited;

      const done = await waitForExecution(asApp(b), user, id, 30_000);
      expect(done.status).toBe(200);
      expect(done.body.status).toBe('completed');
      expect(done.body.result).toEqual({ message: 'survives' });
      // Run twice, and the second run is on record: nothing ran twice unnoticed.
      expect(done.body.metrics.attempts).toBe(2);
    } finally {
      await pg.end();
    }
  }, 60_000);
});
