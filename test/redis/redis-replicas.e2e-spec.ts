import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { ToolCatalogService } from '@app/tools';
import { http, TestApp } from '../support/test-app';
import { Caller, eventually, installWebSocketGlobal, login, signUp, ticketFor, upgradeStatus } from '../mcp/mcp-test-kit';
import { ADMIN_EMAIL, execute, updateTool } from '../tools/tools-test-kit';
import { dropPrefix, openLegacyStream, readToEnd, startReplicaPair, uniquePrefix } from './redis-test-kit';

installWebSocketGlobal();

const wsUrl = (t: TestApp, query: string) => `${t.baseUrl.replace('http://', 'ws://')}/api/v1/mcp/ws${query}`;

/** Switches off a replica's periodic catalogue refresh: a change on another replica then reaches it only through the Redis announcement. */
function withoutPeriodicRefresh(t: TestApp): { restore(): void } {
  const spy = jest.spyOn(t.app.get(ToolCatalogService) as unknown as { refresh(): Promise<void> }, 'refresh').mockResolvedValue(undefined);
  return { restore: () => spy.mockRestore() };
}

/**
 * Two replicas (A and B) of one deployment: one PostgreSQL database, one Redis (under a prefix of
 * their own). PostgreSQL only: the embedded database belongs to a single process, so it cannot
 * back two replicas.
 */
describe('several replicas sharing state through Redis', () => {
  const prefix = uniquePrefix();
  let a: TestApp;
  let b: TestApp;
  let close: (() => Promise<void>) | undefined;
  let admin: Caller;
  let user: Caller;

  beforeAll(async () => {
    ({ a, b, close } = await startReplicaPair(prefix));
    admin = await login(a, ADMIN_EMAIL);
    user = await signUp(a, 'replica-user@example.com');
  });

  afterAll(async () => {
    await close?.();
    await dropPrefix(prefix);
  });

  it('both replicas report Redis up in /admin/health', async () => {
    for (const t of [a, b]) {
      const res = await http(t.baseUrl, 'GET', '/api/v1/admin/health', { token: admin.token });
      expect(res.status).toBe(200);
      expect(res.body.components.redis).toMatchObject({ status: 'healthy', state: 'up', latencyMs: expect.any(Number) });
    }
  });

  it('shares the request rate limit: the 11th auth call of one client is refused on whichever replica', async () => {
    const client = { 'x-forwarded-for': '198.51.100.23' };
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = i % 2 === 0 ? a : b;
      statuses.push(
        (await http(t.baseUrl, 'POST', '/api/v1/auth/refresh', { body: { refreshToken: `nope-${i}` }, headers: client })).status,
      );
    }
    expect(statuses.every((status) => status !== 429)).toBe(true);
    for (const t of [a, b]) {
      const refused = await http(t.baseUrl, 'POST', '/api/v1/auth/refresh', { body: { refreshToken: 'nope' }, headers: client });
      expect(refused.status).toBe(429);
      expect(refused.body.error).toBe('RATE_LIMIT_EXCEEDED');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    // Another client keeps its own budget.
    const other = await http(b.baseUrl, 'POST', '/api/v1/auth/refresh', {
      body: { refreshToken: 'nope' },
      headers: { 'x-forwarded-for': '198.51.100.24' },
    });
    expect(other.status).not.toBe(429);
  });

  it("an admin change on A reaches B's catalogue, and the per-tool limit of 5 is one budget across A and B", async () => {
    // B's periodic refresh is off: only the announcement can bring it the change.
    const refresh = withoutPeriodicRefresh(b);
    expect((await updateTool(a, admin, 'tool_echo', { rateLimit: { requests: 5, window: '1m' } })).status).toBe(200);
    const seen = await eventually(
      () => http(b.baseUrl, 'GET', '/api/v1/tools/tool_echo', { token: user.token }),
      (res) => res.body?.rateLimit?.requests === 5,
    );
    refresh.restore();
    expect(seen.body.rateLimit).toEqual({ requests: 5, window: '1m' });
    try {
      const remaining: string[] = [];
      for (const t of [a, b, a, b, b]) {
        const res = await execute(t, user, 'tool_echo', { parameters: { message: 'shared' } });
        expect(res.status).toBe(200);
        remaining.push(res.headers.get('x-ratelimit-remaining') ?? '');
      }
      expect(remaining).toEqual(['4', '3', '2', '1', '0']);
      for (const t of [a, b]) {
        const refused = await execute(t, user, 'tool_echo', { parameters: { message: 'one too many' } });
        expect(refused.status).toBe(429);
        expect(refused.headers.get('x-ratelimit-limit')).toBe('5');
        expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
      }
    } finally {
      expect((await updateTool(a, admin, 'tool_echo', { rateLimit: null })).status).toBe(200);
    }
  });

  it('a ticket issued on A is redeemed once on B (and then nowhere)', async () => {
    const ticket = await ticketFor(a, user.token);
    expect(await upgradeStatus(wsUrl(b, `?ticket=${ticket}`))).toBe(101);
    expect(await upgradeStatus(wsUrl(b, `?ticket=${ticket}`))).toBe(401);
    expect(await upgradeStatus(wsUrl(a, `?ticket=${ticket}`))).toBe(401);
  });

  it('a session terminated through A is refused on B at once', async () => {
    const caller = await login(a, 'replica-user@example.com');
    // B has the session cached as active.
    expect((await http(b.baseUrl, 'GET', '/api/v1/auth/me', { token: caller.token })).status).toBe(200);
    expect((await http(b.baseUrl, 'GET', '/api/v1/auth/me', { token: caller.token })).status).toBe(200);
    expect((await http(a.baseUrl, 'POST', `/api/v1/sessions/${caller.sessionId}/terminate`, { token: caller.token })).status).toBe(200);
    expect((await http(b.baseUrl, 'GET', '/api/v1/auth/me', { token: caller.token })).status).toBe(401);
  });

  it('a WebSocket MCP connection on B gets list_changed for a change on A, and closes when its session is terminated through A', async () => {
    const transport = new WebSocketClientTransport(new URL(wsUrl(b, `?ticket=${await ticketFor(a, user.token)}`)));
    const client = new Client({ name: 'e2e-replica-ws', version: '1.0.0' });
    await client.connect(transport);
    const names = (await client.listTools()).tools.map((tool) => tool.name);
    expect(names).toContain('tool_statistics');

    const listChanged = new Promise<void>((resolve) => client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()));
    // B's periodic refresh is off: only the announcement can tell B's clients.
    const refresh = withoutPeriodicRefresh(b);
    expect((await updateTool(a, admin, 'tool_statistics', { enabled: false })).status).toBe(200);
    try {
      await listChanged;
      expect((await client.listTools()).tools.map((tool) => tool.name)).not.toContain('tool_statistics');
    } finally {
      refresh.restore();
      expect((await updateTool(a, admin, 'tool_statistics', { enabled: null })).status).toBe(200);
    }

    const sessions = await http(a.baseUrl, 'GET', '/api/v1/sessions', { token: user.token });
    const ws = sessions.body.sessions.filter(
      (s: { connectionType: string; status: string }) => s.connectionType === 'websocket' && s.status === 'active',
    );
    expect(ws).toHaveLength(1);
    const socket = (transport as unknown as { _socket: WebSocket })._socket;
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      socket.addEventListener('close', (event) => resolve({ code: event.code, reason: String(event.reason) })),
    );
    expect((await http(a.baseUrl, 'POST', `/api/v1/sessions/${ws[0].id}/terminate`, { token: user.token })).status).toBe(200);
    expect(await closed).toEqual({ code: 4001, reason: 'session terminated' });
  });

  it('the SSE stream of a 2025-era MCP session on B ends when the session is terminated through A', async () => {
    const { sessionId, reader } = await openLegacyStream(b, user.token);
    try {
      expect((await http(a.baseUrl, 'POST', `/api/v1/sessions/${sessionId}/terminate`, { token: user.token })).status).toBe(200);
      // No request reaches B meanwhile: only the announcement can end the stream this soon.
      expect(await readToEnd(reader, 5_000)).toBe('ended');
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  });

  it('a role change made through A applies on B at once, both ways', async () => {
    const target = await signUp(a, 'replica-role@example.com');
    const list = () => http(b.baseUrl, 'GET', '/api/v1/admin/users', { token: target.token });
    expect((await list()).status).toBe(403);
    const setRoles = (roles: string[]) =>
      http(a.baseUrl, 'PUT', `/api/v1/admin/users/${target.userId}/roles`, { token: admin.token, body: { roles } });
    expect((await setRoles(['admin'])).status).toBe(200);
    expect((await list()).status).toBe(200);
    expect((await list()).status).toBe(200);
    expect((await setRoles(['user'])).status).toBe(200);
    expect((await list()).status).toBe(403);
  });
});
