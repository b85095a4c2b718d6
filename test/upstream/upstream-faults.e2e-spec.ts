import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UpstreamRegistry } from '@app/tools';
import { scrapeMetric } from '../support/metrics';
import { DATABASE_KINDS, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, execute, login, toolsEnv } from '../tools/tools-test-kit';
import {
  freePort,
  getTool,
  HttpUpstream,
  MUTABLE_UPSTREAM,
  startEverythingHttp,
  stdioUpstream,
  upstreamHealth,
  waitFor,
  writeUpstreamsFile,
} from './upstream-test-kit';

/** Upstreams that are dead, die, hang or fail: the gateway answers fast, reconnects, and nothing else suffers. */
describe.each(DATABASE_KINDS)('Upstream faults (%s)', (kind) => {
  let t: TestApp;
  let remote: HttpUpstream;
  let admin: Caller;

  beforeAll(async () => {
    remote = await startEverythingHttp(await freePort());
    const deadPort = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'smcp-faults-'));
    const file = writeUpstreamsFile(dir, [
      {
        name: 'remote',
        transport: 'http',
        url: remote.url,
        category: 'data',
        permissions: ['tools:execute'],
        reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
        healthCheckMs: 250,
      },
      // Long first delay: the stdio upstream stays visibly down for a moment after it is killed.
      stdioUpstream('mutable', MUTABLE_UPSTREAM, [], { reconnect: { initialDelayMs: 1500, maxDelayMs: 3000 } }),
      // Nothing listens there: connection refused at every attempt.
      {
        name: 'dead',
        transport: 'http',
        url: `http://127.0.0.1:${deadPort}/mcp`,
        category: 'data',
        permissions: [],
        reconnect: { initialDelayMs: 200, maxDelayMs: 1000 },
      },
    ]);
    t = await startTestApp(kind, { env: toolsEnv({ MCP_UPSTREAMS_FILE: file }) });
    admin = await login(t, ADMIN_EMAIL);
  });

  afterAll(async () => {
    await t?.close();
    await remote?.kill();
  });

  it('boots without waiting for a dead upstream, shows it down and keeps retrying; the rest works', async () => {
    // The app is up while the dead upstream has never connected: start-up did not wait for it.
    const dead = await upstreamHealth(t, 'dead');
    expect(dead).toMatchObject({ status: 'degraded', transport: 'http', toolCount: 0, lastConnectedAt: null });
    expect(['down', 'connecting']).toContain(dead!.state);
    const retried = await waitFor('a few retries', async () => {
      const health = await upstreamHealth(t, 'dead');
      return (health?.failures as number) >= 2 ? health : undefined;
    });
    expect(retried.lastError).toBe('connection refused');
    expect(await execute(t, admin, 'tool_echo', { parameters: { message: 'still fine' } })).toMatchObject({
      status: 200,
      body: { status: 'completed' },
    });
    expect((await execute(t, admin, 'remote.echo', { parameters: { message: 'hi' } })).body.status).toBe('completed');
    // What the dashboard and the SecureMcpServerUpstreamDown alert read.
    expect(await scrapeMetric(t.baseUrl, 'upstream_connected')).toMatchObject({ 'upstream="dead"': 0, 'upstream="remote"': 1 });
  });

  it("maps an upstream isError result to a failed execution with the upstream's message", async () => {
    const res = await execute(t, admin, 'mutable.fail', { parameters: {} });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'failed', error: { code: 'UPSTREAM_ERROR', message: 'the fixture failed on purpose' } });
  });

  it('stops a slow upstream call at the deadline and cancels it upstream', async () => {
    // The upstream would answer after 20 s: a TIMEOUT answer is the deadline at work (no clock needed).
    const res = await execute(t, admin, 'mutable.slow', { parameters: { ms: 20_000 }, options: { timeout: 300 } });
    expect(res.body).toMatchObject({ status: 'failed', error: { code: 'TIMEOUT' } });
    const stats = await waitFor('upstream saw the cancellation', async () => {
      const res2 = await execute(t, admin, 'mutable.stats', { parameters: {} });
      return res2.body.result?.structuredContent?.cancelled >= 1 ? res2.body.result.structuredContent : undefined;
    });
    // Structured content, checked against the upstream's output schema; and the child's whole environment.
    expect(stats).toEqual({ calls: expect.any(Number), cancelled: 1, envKeys: [] });
  });

  it('fails fast while an HTTP upstream is killed, and comes back without a restart of the gateway', async () => {
    await remote.kill();
    // Answered while the upstream is still dead (it is restarted only below): the call did not wait for it.
    const first = await execute(t, admin, 'remote.echo', { parameters: { message: 'anyone?' } });
    expect(first.body).toMatchObject({ status: 'failed', error: { code: 'UPSTREAM_UNAVAILABLE' } });
    const down = await waitFor('remote down', async () => {
      const health = await upstreamHealth(t, 'remote');
      return health?.state !== 'connected' ? health : undefined;
    });
    expect(down.status).toBe('degraded');
    expect((await scrapeMetric(t.baseUrl, 'upstream_connected'))['upstream="remote"']).toBe(0);
    const again = await execute(t, admin, 'remote.echo', { parameters: { message: 'anyone?' } });
    expect(again.body.error.code).toBe('UPSTREAM_UNAVAILABLE');
    // Its tools stay in the catalogue: an outage is not a removal.
    expect(await getTool(t, admin, 'remote.echo')).toMatchObject({ enabled: true });

    remote = await startEverythingHttp(remote.port);
    await waitFor('remote connected again', async () => (await upstreamHealth(t, 'remote'))?.state === 'connected');
    expect((await scrapeMetric(t.baseUrl, 'upstream_connected'))['upstream="remote"']).toBe(1);
    expect((await execute(t, admin, 'remote.echo', { parameters: { message: 'back' } })).body).toMatchObject({
      status: 'completed',
      result: { content: [{ type: 'text', text: 'Echo: back' }] },
    });
  });

  it('respawns a killed stdio upstream: down, then connected, calls work again', async () => {
    const registry = t.app.get(UpstreamRegistry);
    const pid = registry.get('mutable')!.status().pid!;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    const down = await waitFor('mutable down', async () => {
      const health = await upstreamHealth(t, 'mutable');
      return health?.state === 'down' ? health : undefined;
    });
    expect(down).toMatchObject({ status: 'degraded', lastError: 'the upstream process exited' });
    // Refused at once rather than held until the respawn: a call that waited would have completed.
    const during = await execute(t, admin, 'mutable.stats', { parameters: {} });
    expect(during.body.error.code).toBe('UPSTREAM_UNAVAILABLE');

    await waitFor('mutable connected again', async () => (await upstreamHealth(t, 'mutable'))?.state === 'connected');
    expect(registry.get('mutable')!.status().pid).not.toBe(pid);
    const res = await execute(t, admin, 'mutable.stats', { parameters: {} });
    expect(res.body).toMatchObject({ status: 'completed', result: { structuredContent: { calls: 1, cancelled: 0 } } });
  });
});
