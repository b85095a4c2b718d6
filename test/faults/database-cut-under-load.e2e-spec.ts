import { Client } from 'pg';
import { http, HttpResult } from '../support/test-app';
import { upgradeStatus } from '../mcp/mcp-test-kit';
import { TcpProxy } from '../support/tcp-proxy';
import { count, eventually, FaultServer, LoadRun, loginAdmin, Outcome, sleep, startFaultServer, startLoad, unlimitEcho } from './fault-kit';

/**
 * PostgreSQL goes away while the server is busy, and comes back. PostgreSQL only: the database
 * has to be a real server behind a TCP connection we can cut (test/support/tcp-proxy.ts), and the
 * server runs as its own built process so the cut cannot touch the test's own connections.
 */
const FAST_MS = 3_000;
/** How long the cut lasts: long enough that "answered during the cut" is a generous bound, not a speed test. */
const CUT_MS = 8_000;
/** The stall case's timeouts: a silent database is given up on shortly after the statement timeout. */
const STATEMENT_MS = 1_500;
const CONNECT_MS = 1_000;
/**
 * Longest a request may take while the database is silent: one query's deadline (statement
 * timeout + 1 s), two more attempts that wait for a connection, and a second of slack. The stall
 * lasts longer than this, so a request that simply waited for the database to come back fails.
 */
const STALL_BOUND_MS = STATEMENT_MS + 1_000 + 2 * CONNECT_MS + 1_000;
const STALL_MS = STALL_BOUND_MS + 4_000;
/**
 * The silent case runs with the DEFAULT timeouts (statement 15 s, so a query's own deadline is
 * 16 s): the breaker's heartbeat (DATABASE_HEARTBEAT_MS 1 s + DATABASE_PROBE_TIMEOUT_MS 2 s) must
 * notice first. Bound on detection: heartbeat + probe timeout + 1 s of slack for this shared machine.
 */
const SILENT_DETECT_BOUND_MS = 1_000 + 2_000 + 1_000;
/** Once open, a 503 is answered without waiting on the database: p99 far below the 15 s statement timeout. */
const SILENT_FAST_P99_MS = 1_500;
const SILENT_MS = 10_000;

/** The answer, how long it took, and when it arrived (to check it came while the outage lasted). */
async function timed<T extends object = HttpResult>(run: () => Promise<T>): Promise<T & { ms: number; at: number }> {
  const started = Date.now();
  const res = await run();
  const at = Date.now();
  return { ...res, ms: at - started, at };
}

/**
 * Gives the database back, waits until the server is ready again, lets the load run on a little
 * and stops it; the same process all along (recovered without a restart).
 */
async function bringBack(
  server: FaultServer['server'],
  load: LoadRun,
  giveBack: () => unknown,
): Promise<{ backAt: number; readyAgainAt: number }> {
  const backAt = Date.now();
  await giveBack();
  const readyAgainAt = await eventually(async () => (await http(server.baseUrl, 'GET', '/api/v1/ready')).status === 200, 15_000);
  await sleep(2_500);
  await load.stop();
  expect(server.child.exitCode).toBeNull();
  return { backAt, readyAgainAt };
}

/** The slowest answer of each phase and kind, for the record. */
function slowest(outcomes: Outcome[], phase: (o: Outcome) => string): Record<string, number> {
  const max: Record<string, number> = {};
  for (const o of outcomes) {
    const key = `${phase(o)} ${o.kind}`;
    max[key] = Math.max(max[key] ?? 0, Math.round(o.durationMs));
  }
  return max;
}

/**
 * Writes (executions, contexts) and reads on 12 keep-alive connections, 250 a second: steady
 * load, not a busy loop of instant 503s that would starve this shared 2-core machine.
 */
function mixedLoad(baseUrl: string, token: string, timeoutSec: number): LoadRun {
  let n = 0;
  return startLoad(
    baseUrl,
    token,
    [
      { kind: 'execute', method: 'POST', path: '/api/v1/tools/tool_echo/execute', body: () => ({ parameters: { message: `w${n++}` } }) },
      { kind: 'context', method: 'POST', path: '/api/v1/contexts', body: () => ({ name: `cut-${n++}`, tools: ['tool_echo'] }) },
      { kind: 'list', method: 'GET', path: '/api/v1/tools' },
    ],
    { connections: 12, timeoutSec, rate: 250 },
  );
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Straight from PostgreSQL: no context committed without its audit record (nor a record without its context). */
async function expectEveryContextAudited(databaseUrl: string): Promise<void> {
  const pg = new Client({ connectionString: databaseUrl });
  await pg.connect();
  try {
    const { rows } = await pg.query(
      `SELECT (SELECT count(*) FROM contexts c WHERE NOT EXISTS
                (SELECT 1 FROM audit_logs a WHERE a.action = 'context.create' AND a.resource = 'context:' || c.id))::int AS unaudited,
              (SELECT count(*) FROM audit_logs a WHERE a.action = 'context.create' AND NOT EXISTS
                (SELECT 1 FROM contexts c WHERE a.resource = 'context:' || c.id))::int AS orphans,
              (SELECT count(*) FROM contexts)::int AS contexts`,
    );
    expect(rows[0]).toEqual({ unaudited: 0, orphans: 0, contexts: expect.any(Number) });
    expect(rows[0].contexts).toBeGreaterThan(0);
  } finally {
    await pg.end();
  }
}

/** Straight from PostgreSQL (not through the proxy): every write the load saw acknowledged is there. */
async function expectAcknowledgedWritesStored(databaseUrl: string, outcomes: Outcome[]): Promise<void> {
  const contexts = outcomes.filter((o) => o.kind === 'context' && o.status === 201).map((o) => JSON.parse(o.body).id as string);
  const executions = outcomes.filter((o) => o.kind === 'execute' && o.status === 200).map((o) => JSON.parse(o.body).executionId as string);
  expect(contexts.length).toBeGreaterThan(0);
  expect(executions.length).toBeGreaterThan(0);
  const pg = new Client({ connectionString: databaseUrl });
  await pg.connect();
  try {
    const { rows: storedContexts } = await pg.query(`SELECT id FROM contexts WHERE id = ANY($1)`, [contexts]);
    const { rows: storedExecutions } = await pg.query(`SELECT id FROM tool_executions WHERE id = ANY($1) AND status = 'completed'`, [
      executions,
    ]);
    expect(storedContexts.length).toBe(contexts.length);
    expect(storedExecutions.length).toBe(executions.length);
  } finally {
    await pg.end();
  }
}

const UNAVAILABLE_BODY = {
  error: 'SERVICE_UNAVAILABLE',
  message: 'Database temporarily unavailable',
  details: [],
  timestamp: expect.any(String),
  requestId: expect.any(String),
  traceId: expect.any(String),
};

describe('database outage under load (built server, PostgreSQL behind a proxy)', () => {
  let fault: FaultServer | undefined;
  let proxy: TcpProxy | undefined;
  afterEach(async () => {
    await fault?.cleanup();
    await proxy?.cut();
    fault = undefined;
    proxy = undefined;
  });

  async function startBehindProxy(
    env: Record<string, string>,
  ): Promise<{ server: FaultServer['server']; databaseUrl: string; proxy: TcpProxy }> {
    let created: TcpProxy | undefined;
    fault = await startFaultServer(async (database) => {
      const target = new URL(database.url);
      created = new TcpProxy(target.hostname, Number(target.port || 5432));
      proxy = created;
      target.host = `127.0.0.1:${await created.start()}`;
      return target.toString();
    }, env);
    return { server: fault.server, databaseUrl: fault.database.url, proxy: created! };
  }

  it('cut: answers fast 503s while the database is away, stays alive, recovers by itself and loses nothing it acknowledged', async () => {
    const { server, databaseUrl, proxy } = await startBehindProxy({ DATABASE_CONNECT_TIMEOUT_MS: '1000' });
    const token = await loginAdmin(server.baseUrl);
    await unlimitEcho(server.baseUrl, token);
    // A request that takes this long is a hang.
    const load = mixedLoad(server.baseUrl, token, FAST_MS / 1000 + 2);
    const ticket = await http(server.baseUrl, 'POST', '/api/v1/mcp/tickets', { token });
    expect(ticket.status).toBe(200);
    await sleep(2_000);

    const cutAt = Date.now();
    await proxy.cut();
    await sleep(500);
    // Readiness drops within the probe's own timeout, liveness stays, and a write fails fast
    // with the contract's Error body.
    const ready = await timed(() => http(server.baseUrl, 'GET', '/api/v1/ready'));
    expect({ status: ready.status, body: ready.body }).toEqual({ status: 503, body: { ready: false, timestamp: expect.any(String) } });
    // Failing fast is the behaviour here: each refusal is answered while the database is still away
    // (one that waited for it to come back would answer after the cut).
    expect(ready.at).toBeLessThan(cutAt + CUT_MS);
    expect((await http(server.baseUrl, 'GET', '/api/v1/health')).status).toBe(200);
    const write = await timed(() => http(server.baseUrl, 'POST', '/api/v1/contexts', { token, body: { name: 'during the cut' } }));
    expect(write.status).toBe(503);
    expect(write.body).toEqual(UNAVAILABLE_BODY);
    expect(write.headers.get('retry-after')).toBe('5');
    expect(write.at).toBeLessThan(cutAt + CUT_MS);
    // A WebSocket upgrade that needs the database is refused the same way (503, not 500).
    const upgrade = await timed(async () => ({
      status: await upgradeStatus(`${server.baseUrl.replace('http://', 'ws://')}/api/v1/mcp/ws?ticket=${ticket.body.ticket}`),
    }));
    expect(upgrade.status).toBe(503);
    expect(upgrade.at).toBeLessThan(cutAt + CUT_MS);
    await sleep(CUT_MS - (Date.now() - cutAt));

    const { backAt: restoredAt, readyAgainAt } = await bringBack(server, load, () => proxy.restore());

    // Every answer was quick (no request waited on a dead connection) and either served or a 503.
    const slow = load.outcomes.filter((o) => o.durationMs >= FAST_MS);
    expect(slow.map((o) => `${o.kind} ${o.status} ${o.durationMs} ms`)).toEqual([]);
    expect(load.timeouts()).toBe(0);
    const phase = (o: Outcome) => (o.at < cutAt ? 'before' : o.at < restoredAt ? 'cut' : o.at < readyAgainAt ? 'restoring' : 'after');
    const byPhase = count(load.outcomes, (o) => `${phase(o)} ${o.kind} ${o.status}`);
    const unexpected = load.outcomes.filter((o) => ![200, 201, 503].includes(o.status));
    expect({ byPhase, unexpected: unexpected.slice(0, 10).map((o) => `${o.kind} ${o.status} ${o.body}`) }).toEqual({
      byPhase,
      unexpected: [],
    });
    const unavailable = load.outcomes.filter((o) => o.status === 503);
    expect(unavailable.length).toBeGreaterThan(0);
    for (const o of unavailable) expect(JSON.parse(o.body)).toMatchObject({ error: 'SERVICE_UNAVAILABLE', details: [] });
    expect(load.outcomes.filter((o) => phase(o) === 'before' && o.status === 503)).toEqual([]);

    // Writes succeed again once ready (a moment's grace for connections opened just before).
    const after = load.outcomes.filter((o) => o.at > readyAgainAt + 1_000);
    expect(after.filter((o) => o.status === 503).length).toBe(0);
    expect(after.filter((o) => o.kind === 'context' && o.status === 201).length).toBeGreaterThan(0);
    expect(after.filter((o) => o.kind === 'execute' && o.status === 200).length).toBeGreaterThan(0);

    // Nothing acknowledged is lost.
    await expectAcknowledgedWritesStored(databaseUrl, load.outcomes);

    process.stdout.write(
      `${JSON.stringify({ cut: byPhase, slowestMs: slowest(load.outcomes, phase), recoveredAfterMs: readyAgainAt - restoredAt })}\n`,
    );
  });

  it('stall: stops waiting for a database that went silent (503 shortly after the statement timeout, no hang), then recovers', async () => {
    const { server, databaseUrl, proxy } = await startBehindProxy({
      DATABASE_CONNECT_TIMEOUT_MS: String(CONNECT_MS),
      DATABASE_STATEMENT_TIMEOUT_MS: String(STATEMENT_MS),
    });
    const token = await loginAdmin(server.baseUrl);
    await unlimitEcho(server.baseUrl, token);
    const load = mixedLoad(server.baseUrl, token, STALL_BOUND_MS / 1000 + 3);
    await sleep(2_000);

    const stalledAt = Date.now();
    proxy.stall();
    await sleep(300);
    const ready = await timed(() => http(server.baseUrl, 'GET', '/api/v1/ready'));
    expect(ready.status).toBe(503);
    // Answered while the database is still silent, as below for the write.
    expect(ready.at).toBeLessThan(stalledAt + STALL_MS);
    expect((await http(server.baseUrl, 'GET', '/api/v1/health')).status).toBe(200);
    const write = await timed(() => http(server.baseUrl, 'POST', '/api/v1/contexts', { token, body: { name: 'during the stall' } }));
    expect({ status: write.status, body: write.body }).toEqual({ status: 503, body: UNAVAILABLE_BODY });
    expect(write.at).toBeLessThan(stalledAt + STALL_MS);
    await sleep(STALL_MS - (Date.now() - stalledAt));

    const { backAt: resumedAt, readyAgainAt } = await bringBack(server, load, () => proxy.resume());

    const phase = (o: Outcome) => (o.at < stalledAt ? 'before' : o.at < resumedAt ? 'stall' : o.at < readyAgainAt ? 'resuming' : 'after');
    process.stdout.write(`${JSON.stringify({ stallSlowestMs: slowest(load.outcomes, phase) })}\n`);
    const slow = load.outcomes.filter((o) => o.durationMs >= STALL_BOUND_MS);
    expect(slow.map((o) => `${o.kind} ${o.status} ${o.durationMs} ms`)).toEqual([]);
    expect(load.timeouts()).toBe(0);
    const byPhase = count(load.outcomes, (o) => `${phase(o)} ${o.kind} ${o.status}`);
    const unexpected = load.outcomes.filter((o) => ![200, 201, 503].includes(o.status));
    expect({ byPhase, unexpected: unexpected.slice(0, 10).map((o) => `${o.kind} ${o.status} ${o.body}`) }).toEqual({
      byPhase,
      unexpected: [],
    });
    for (const o of load.outcomes.filter((o) => o.status === 503))
      expect(JSON.parse(o.body)).toMatchObject({ error: 'SERVICE_UNAVAILABLE' });
    const after = load.outcomes.filter((o) => o.at > readyAgainAt + 1_000);
    expect(after.filter((o) => o.status === 503).length).toBe(0);
    expect(after.filter((o) => o.kind === 'context' && o.status === 201).length).toBeGreaterThan(0);

    await expectAcknowledgedWritesStored(databaseUrl, load.outcomes);
    process.stdout.write(
      `${JSON.stringify({ stall: byPhase, slowestMs: slowest(load.outcomes, phase), recoveredAfterMs: readyAgainAt - resumedAt })}\n`,
    );
  });

  it('silent, default timeouts: the breaker opens within heartbeat + probe timeout, then 503s at once; recovers without restart', async () => {
    // No timeout overridden: DATABASE_STATEMENT_TIMEOUT_MS 15 s, DATABASE_CONNECT_TIMEOUT_MS 3 s, heartbeat 1 s, probe 2 s.
    const { server, databaseUrl, proxy } = await startBehindProxy({});
    const token = await loginAdmin(server.baseUrl);
    await unlimitEcho(server.baseUrl, token);
    // Long enough that a request stuck for the query deadline (16 s) is recorded, not counted as a hang.
    const load = mixedLoad(server.baseUrl, token, 25);
    await sleep(2_000);

    const silencedAt = Date.now();
    proxy.silence();
    await sleep(SILENT_DETECT_BOUND_MS);
    // Open by now: a write fails at once with the contract's Error body; readiness is down, liveness up.
    const write = await timed(() => http(server.baseUrl, 'POST', '/api/v1/contexts', { token, body: { name: 'during the silence' } }));
    expect({ status: write.status, body: write.body, retryAfter: write.headers.get('retry-after') }).toEqual({
      status: 503,
      body: UNAVAILABLE_BODY,
      retryAfter: '5',
    });
    expect(write.ms).toBeLessThan(SILENT_FAST_P99_MS);
    const ready = await timed(() => http(server.baseUrl, 'GET', '/api/v1/ready'));
    expect({ status: ready.status, body: ready.body }).toEqual({ status: 503, body: { ready: false, timestamp: expect.any(String) } });
    expect(ready.ms).toBeLessThan(SILENT_FAST_P99_MS);
    expect((await http(server.baseUrl, 'GET', '/api/v1/health')).status).toBe(200);
    await sleep(SILENT_MS - (Date.now() - silencedAt));

    const { backAt: restoredAt, readyAgainAt } = await bringBack(server, load, () => proxy.restore());

    const startedAt = (o: Outcome) => o.at - o.durationMs;
    const phase = (o: Outcome) =>
      o.at < silencedAt ? 'before' : o.at < restoredAt ? 'silent' : o.at < readyAgainAt ? 'restoring' : 'after';
    const byPhase = count(load.outcomes, (o) => `${phase(o)} ${o.kind} ${o.status}`);
    const unexpected = load.outcomes.filter((o) => ![200, 201, 503].includes(o.status));
    expect({ byPhase, unexpected: unexpected.slice(0, 10).map((o) => `${o.kind} ${o.status} ${o.body}`) }).toEqual({
      byPhase,
      unexpected: [],
    });
    expect(load.timeouts()).toBe(0);
    for (const o of load.outcomes.filter((o) => o.status === 503))
      expect(JSON.parse(o.body)).toMatchObject({ error: 'SERVICE_UNAVAILABLE', details: [] });
    expect(load.outcomes.filter((o) => phase(o) === 'before' && o.status === 503)).toEqual([]);

    // Requests in flight when it went silent are released when the breaker opens, not at their 16 s deadline.
    const silentOutcomes = load.outcomes.filter((o) => o.at >= silencedAt && startedAt(o) < restoredAt);
    const longest = Math.max(...silentOutcomes.map((o) => o.durationMs));
    expect(longest).toBeLessThan(SILENT_DETECT_BOUND_MS + SILENT_FAST_P99_MS);
    // After detection every write is a fast 503 (the tool list may still be served from the in-memory catalogue).
    const afterDetection = load.outcomes.filter((o) => startedAt(o) >= silencedAt + SILENT_DETECT_BOUND_MS && o.at < restoredAt);
    const writes = afterDetection.filter((o) => o.kind !== 'list');
    expect(writes.length).toBeGreaterThan(100);
    expect(count(writes, (o) => o.status)).toEqual({ 503: writes.length });
    const p99 = percentile(
      afterDetection.filter((o) => o.status === 503).map((o) => o.durationMs),
      99,
    );
    expect(p99).toBeLessThan(SILENT_FAST_P99_MS);
    // The first fast 503 marks when the breaker opened (measured, for the README).
    const firstFast = load.outcomes.find((o) => o.at >= silencedAt && o.status === 503 && o.durationMs < 200);

    // Served again once ready (a moment's grace for connections opened just before).
    const after = load.outcomes.filter((o) => o.at > readyAgainAt + 1_000);
    expect(after.filter((o) => o.status === 503).length).toBe(0);
    expect(after.filter((o) => o.kind === 'context' && o.status === 201).length).toBeGreaterThan(0);
    expect(after.filter((o) => o.kind === 'execute' && o.status === 200).length).toBeGreaterThan(0);

    await expectAcknowledgedWritesStored(databaseUrl, load.outcomes);
    await expectEveryContextAudited(databaseUrl);
    process.stdout.write(
      `${JSON.stringify({
        silent: byPhase,
        slowestMs: slowest(load.outcomes, phase),
        openedAfterMs: firstFast ? firstFast.at - silencedAt : null,
        longestDuringSilenceMs: Math.round(longest),
        p99AfterDetectionMs: Math.round(p99),
        fastWriteMs: write.ms,
        recoveredAfterMs: readyAgainAt - restoredAt,
      })}\n`,
    );
  });
});
