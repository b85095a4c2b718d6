import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { http, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, login, signUp, toolsEnv } from '../tools/tools-test-kit';
import { freePort, upstreamHealth, waitFor, writeUpstreamsFile } from '../upstream/upstream-test-kit';

/**
 * The public /health/detailed tells a caller whether each component is healthy and nothing
 * else: no data directory, no database kind, no upstream names or their last errors, no process
 * figures. Administrators (admin:health:read) get those at GET /admin/health.
 */
describe('Health details are for administrators', () => {
  let t: TestApp;
  let admin: Caller;
  let user: Caller;
  const deadUpstream = 'billing-internal';

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smcp-health-'));
    const file = writeUpstreamsFile(dir, [
      // Nothing listens there: the upstream is down with a last error.
      {
        name: deadUpstream,
        transport: 'http',
        url: `http://127.0.0.1:${await freePort()}/mcp`,
        category: 'data',
        permissions: [],
        reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
      },
    ]);
    t = await startTestApp('postgres', { env: toolsEnv({ MCP_UPSTREAMS_FILE: file }) });
    admin = await login(t, ADMIN_EMAIL);
    user = await signUp(t, 'health-user@example.com');
    await waitFor('the upstream to fail once', async () => (await upstreamHealth(t, deadUpstream))?.lastError);
  });
  afterAll(() => t?.close());

  /** The public shape: statuses only (memory, disk and the event loop move with the machine's load). */
  const publicShape = {
    status: 'degraded',
    timestamp: expect.any(String),
    version: 'test',
    components: {
      database: { status: 'healthy' },
      memory: { status: expect.stringMatching(/^(healthy|degraded)$/) },
      disk: { status: expect.stringMatching(/^(healthy|degraded)$/) },
      eventLoop: { status: expect.stringMatching(/^(healthy|degraded)$/) },
      redis: { status: 'healthy' },
      upstream: { status: 'degraded' },
    },
    metrics: {},
  };

  it("answers anyone with each component's status only", async () => {
    const res = await http(t.baseUrl, 'GET', '/api/v1/health/detailed');
    expect(res.status).toBe(200);
    expect(res.body).toEqual(publicShape);
    // Not even in passing: the data directory, the upstream's name or its error.
    expect(res.text.includes(t.dataDir)).toBe(false);
    expect(res.text.includes(deadUpstream)).toBe(false);
    expect(res.text.includes('connection refused')).toBe(false);
    // The same for a signed-in user who is not an administrator.
    expect((await http(t.baseUrl, 'GET', '/api/v1/health/detailed', { token: user.token })).body).toEqual(publicShape);
  });

  it('gives the figures to administrators only', async () => {
    const anonymous = await http(t.baseUrl, 'GET', '/api/v1/admin/health');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error).toBe('UNAUTHORIZED');
    const plain = await http(t.baseUrl, 'GET', '/api/v1/admin/health', { token: user.token });
    expect(plain.status).toBe(403);
    expect(plain.body.error).toBe('FORBIDDEN');

    const res = await http(t.baseUrl, 'GET', '/api/v1/admin/health', { token: admin.token });
    expect(res.status).toBe(200);
    expect(res.body.components.database).toMatchObject({ status: 'healthy', kind: 'postgresql' });
    expect(res.body.components.disk.path).toBe(t.dataDir);
    expect(res.body.components[`upstream:${deadUpstream}`]).toMatchObject({ status: 'degraded', lastError: 'connection refused' });
    expect(res.body.metrics.uptimeSeconds).toEqual(expect.any(Number));
  });
});
