import { scrapeMetric } from '../support/metrics';
import { http, TestApp } from '../support/test-app';
import { TcpProxy } from '../support/tcp-proxy';
import { Caller, eventually, login, signUp, ticketFor, upgradeStatus } from '../mcp/mcp-test-kit';
import { ADMIN_EMAIL, execute, updateTool } from '../tools/tools-test-kit';
import { dropPrefix, openLegacyStream, readToEnd, REDIS_URL, startReplicaPair, uniquePrefix } from './redis-test-kit';

const wsUrl = (t: TestApp, ticket: string) => `${t.baseUrl.replace('http://', 'ws://')}/api/v1/mcp/ws?ticket=${ticket}`;

/** Redis's figures are for administrators (GET /admin/health); the public health shows its status only. */
const redisState = async (t: TestApp, token: string) =>
  (await http(t.baseUrl, 'GET', '/api/v1/admin/health', { token })).body.components.redis.state as string;

/**
 * Redis taken away (a TCP proxy in front of the real one, cut and restored): replicas start and
 * keep serving, say so in /health/detailed, limit rates per process and stay fail-closed on
 * sessions. PostgreSQL only: two replicas need a database server (the embedded one is per process).
 */
describe('replicas when Redis is unreachable', () => {
  const prefix = uniquePrefix();
  const redisTarget = new URL(REDIS_URL);
  const proxy = new TcpProxy(redisTarget.hostname, Number(redisTarget.port || 6379));
  let a: TestApp;
  let b: TestApp;
  let close: (() => Promise<void>) | undefined;
  let admin: Caller;
  let user: Caller;

  beforeAll(async () => {
    const port = await proxy.start();
    await proxy.cut();
    // Nothing answers behind the proxy: both still start.
    ({ a, b, close } = await startReplicaPair(prefix, `redis://127.0.0.1:${port}`));
    admin = await login(a, ADMIN_EMAIL);
    user = await signUp(a, 'outage-user@example.com');
  });

  afterAll(async () => {
    await close?.();
    await proxy.cut();
    await dropPrefix(prefix);
  });

  it('starts and serves; liveness and readiness stay up; /health/detailed says degraded with redis down', async () => {
    for (const t of [a, b]) {
      expect((await http(t.baseUrl, 'GET', '/api/v1/health')).status).toBe(200);
      expect((await http(t.baseUrl, 'GET', '/api/v1/ready')).status).toBe(200);
      const detailed = await http(t.baseUrl, 'GET', '/api/v1/admin/health', { token: admin.token });
      expect(detailed.status).toBe(200);
      expect(detailed.body.status).toBe('degraded');
      expect(detailed.body.components.database.status).toBe('healthy');
      expect(detailed.body.components.redis).toMatchObject({
        status: 'degraded',
        state: 'down',
        degraded: expect.arrayContaining([expect.stringContaining('rate limits')]),
      });
      // What the dashboard and the SecureMcpServerRedisBreakerOpen alert read.
      expect(await scrapeMetric(t.baseUrl, 'circuit_breaker_open')).toEqual({ 'dependency="postgresql"': 0, 'dependency="redis"': 1 });
    }
  });

  it('still limits rates, per replica', async () => {
    const client = { 'x-forwarded-for': '203.0.113.40' };
    for (let i = 0; i < 10; i++) {
      expect((await http(a.baseUrl, 'POST', '/api/v1/auth/refresh', { body: { refreshToken: 'x' }, headers: client })).status).not.toBe(
        429,
      );
    }
    expect((await http(a.baseUrl, 'POST', '/api/v1/auth/refresh', { body: { refreshToken: 'x' }, headers: client })).status).toBe(429);
    // B counts on its own while Redis is away.
    expect((await http(b.baseUrl, 'POST', '/api/v1/auth/refresh', { body: { refreshToken: 'x' }, headers: client })).status).not.toBe(429);

    expect((await updateTool(a, admin, 'tool_echo', { rateLimit: { requests: 2, window: '1m' } })).status).toBe(200);
    try {
      expect((await execute(a, user, 'tool_echo', { parameters: { message: '1' } })).status).toBe(200);
      const second = await execute(a, user, 'tool_echo', { parameters: { message: '2' } });
      expect(second.status).toBe(200);
      expect(second.headers.get('x-ratelimit-remaining')).toBe('0');
      const refused = await execute(a, user, 'tool_echo', { parameters: { message: '3' } });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('x-ratelimit-limit')).toBe('2');
    } finally {
      expect((await updateTool(a, admin, 'tool_echo', { rateLimit: null })).status).toBe(200);
    }
  });

  it('refuses on B a session terminated through A (B reads the row while it cannot hear A)', async () => {
    const caller = await login(a, 'outage-user@example.com');
    expect((await http(b.baseUrl, 'GET', '/api/v1/auth/me', { token: caller.token })).status).toBe(200);
    expect((await http(b.baseUrl, 'GET', '/api/v1/auth/me', { token: caller.token })).status).toBe(200);
    expect((await http(a.baseUrl, 'POST', `/api/v1/sessions/${caller.sessionId}/terminate`, { token: caller.token })).status).toBe(200);
    expect((await http(b.baseUrl, 'GET', '/api/v1/auth/me', { token: caller.token })).status).toBe(401);
  });

  it('refuses WebSocket tickets (503 to retry) rather than issue one only this replica could redeem', async () => {
    const refused = await http(a.baseUrl, 'POST', '/api/v1/mcp/tickets', { token: user.token });
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: 'SERVICE_UNAVAILABLE', details: [] });
    expect(refused.headers.get('retry-after')).toBe('5');
    // A WebSocket with a bearer token needs no ticket and still connects.
    expect(await upgradeStatus(`${a.baseUrl.replace('http://', 'ws://')}/api/v1/mcp/ws`, { authorization: `Bearer ${user.token}` })).toBe(
      101,
    );
  });

  it('shares state again once Redis is back, and degrades again (still serving) when it is cut', async () => {
    await proxy.restore();
    for (const t of [a, b])
      expect(
        await eventually(
          () => redisState(t, admin.token),
          (state) => state === 'up',
          15_000,
          200,
        ),
      ).toBe('up');
    expect((await http(a.baseUrl, 'GET', '/api/v1/health/detailed')).body.components.redis.status).toBe('healthy');
    for (const t of [a, b])
      expect(await scrapeMetric(t.baseUrl, 'circuit_breaker_open')).toEqual({ 'dependency="postgresql"': 0, 'dependency="redis"': 0 });
    expect(await upgradeStatus(wsUrl(b, await ticketFor(a, user.token)))).toBe(101);
    // B hears A again: a stream on B ends as soon as its session is terminated through A.
    const { sessionId, reader } = await openLegacyStream(b, user.token);
    try {
      expect((await http(a.baseUrl, 'POST', `/api/v1/sessions/${sessionId}/terminate`, { token: user.token })).status).toBe(200);
      expect(await readToEnd(reader, 5_000)).toBe('ended');
    } finally {
      await reader.cancel().catch(() => undefined);
    }

    const caller = await login(a, 'outage-user@example.com');
    expect((await http(b.baseUrl, 'GET', '/api/v1/auth/me', { token: caller.token })).status).toBe(200);

    await proxy.cut();
    for (const t of [a, b])
      expect(
        await eventually(
          () => redisState(t, admin.token),
          (state) => state === 'down',
          15_000,
          200,
        ),
      ).toBe('down');
    expect((await http(b.baseUrl, 'GET', '/api/v1/ready')).status).toBe(200);
    expect((await http(b.baseUrl, 'GET', '/api/v1/auth/me', { token: caller.token })).status).toBe(200);
    expect((await http(a.baseUrl, 'POST', `/api/v1/sessions/${caller.sessionId}/terminate`, { token: caller.token })).status).toBe(200);
    expect((await http(b.baseUrl, 'GET', '/api/v1/auth/me', { token: caller.token })).status).toBe(401);
  });
});
