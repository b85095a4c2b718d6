/**
 * A federated MCP `tools/call` against calling the same upstream directly.
 *
 * The upstream is an official-SDK server (createMcpHandler, one `echo` tool) in a process of its
 * own (bench/support/echo-upstream.cjs). "Direct" posts 2026-07-28 `tools/call` requests to it.
 * "Federated" posts the same request for `bench.echo` to the gateway (POST /api/v1/mcp: bearer
 * authentication, RBAC, per-tool rate limit on but not reached, schema validation, execution row
 * and hash-chained audit record on PostgreSQL), which calls the upstream through its
 * UpstreamToolProvider (v2 client, Streamable HTTP). REST `POST /api/v1/tools/bench.echo/execute`
 * is measured as a third line for reference (and stands in if the MCP endpoint does not answer).
 *
 * Two figures, as issue 6 asks:
 *   - throughput at saturation (autocannon, BENCH_CONNECTIONS connections, closed loop), rounds
 *     alternating so drift hits both sides alike: the ratio of the medians (goal >= 0.4);
 *   - latency at a steady 1,000 calls/s (open loop, bench/support/open-loop-load.cjs): the median
 *     added by the gateway, federated p50 - direct p50 (goal <= 1 ms).
 * For reading them, two references: the built-in tool_echo through the same gateway endpoint (the
 * pipeline's own cost, no upstream), and the same latencies at a low steady rate (BENCH_LOW_RATE,
 * default 100/s) that the gateway sustains on any machine, where the added median is per-call
 * cost rather than queueing. Load generators run in child processes. Needs PostgreSQL
 * (TEST_PG_ADMIN_URL).
 *
 *   npm run bench:federated      (BENCH_ROUNDS, BENCH_SECONDS, BENCH_CONNECTIONS, BENCH_RATE, BENCH_STEADY_SECONDS)
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Pool } from 'pg';
import { loadConfig } from '@app/core';
import { createApp } from '../apps/server/src/create-app';
import { createTestDatabase } from '../test/support/test-database';
import { log, median, runMain } from './support/bench-util';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const STEADY_SECONDS = Number(process.env.BENCH_STEADY_SECONDS ?? 10);
const STEADY_ROUNDS = Number(process.env.BENCH_STEADY_ROUNDS ?? 3);
const LOW_RATE = Number(process.env.BENCH_LOW_RATE ?? 100);
const LOW_SECONDS = 5;
const WARMUP_SECONDS = 3;
const RATIO_GOAL = 0.4;
const ADDED_LATENCY_GOAL_MS = 1;

const ADMIN_EMAIL = 'bench@example.com';
const ADMIN_PASSWORD = 'Bench&Pa55word!Zebra';
const VERSION = '2026-07-28';
const TOOL_ID = 'bench.echo';

const execFileAsync = promisify(execFile);

interface Target {
  label: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

interface Round {
  rps: number;
  non2xx: number;
  errors: number;
  p50: number;
  p99: number;
}

interface Steady {
  ok: number;
  failed: number;
  achievedRate: number;
  p50: number;
  p90: number;
  p99: number;
}

function mcpCall(url: string, name: string, token?: string): Target {
  return {
    label: '',
    url,
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': VERSION,
      'mcp-method': 'tools/call',
      'mcp-name': name,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: {
        name,
        arguments: { message: 'hello, bench' },
        _meta: {
          'io.modelcontextprotocol/protocolVersion': VERSION,
          'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1.0.0' },
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    }),
  };
}

async function main(): Promise<void> {
  const database = await createTestDatabase('smcp_bench');
  const dataDir = mkdtempSync(join(tmpdir(), 'smcp-bench-'));
  const upstream = await startUpstream();
  let app: Awaited<ReturnType<typeof createApp>> | undefined;
  let pool: Pool | undefined;
  try {
    const upstreamsFile = join(dataDir, 'upstreams.json');
    writeFileSync(
      upstreamsFile,
      JSON.stringify({
        upstreams: [
          {
            name: 'bench',
            transport: 'http',
            url: upstream.url,
            category: 'data',
            permissions: ['tools:execute'],
            // Limits on, but not reached: a budget well above what the whole run sends.
            rateLimit: { requests: 1_000_000, window: '1h' },
            maxConcurrentCalls: 4096,
          },
        ],
      }),
    );
    const config = loadConfig(
      {
        NODE_ENV: 'development',
        LOG_LEVEL: 'warn',
        DATA_DIR: dataDir,
        DATABASE_URL: database.url,
        HOST: '127.0.0.1',
        PORT: '0',
        JWT_SECRET: randomBytes(32).toString('hex'),
        BCRYPT_COST: '4',
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        RATE_LIMIT: '10000000',
        AUTH_RATE_LIMIT: '1000',
        MCP_UPSTREAMS_FILE: upstreamsFile,
      },
      'bench',
    );
    app = await createApp(config);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const appUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    const login = await request('POST', `${appUrl}/api/v1/auth/login`, { 'content-type': 'application/json' }, JSON.stringify({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD }));
    const token = JSON.parse(login.text).accessToken as string;
    await waitForTool(appUrl, token);

    const direct = { ...mcpCall(upstream.url, 'echo'), label: 'direct to the upstream' };
    const rest: Target = {
      label: 'federated, REST POST /tools/{id}/execute',
      url: `${appUrl}/api/v1/tools/${TOOL_ID}/execute`,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ parameters: { message: 'hello, bench' } }),
    };
    let federated: Target = { ...mcpCall(`${appUrl}/api/v1/mcp`, TOOL_ID, token), label: 'federated, MCP tools/call via /api/v1/mcp' };
    let builtin: Target = { ...mcpCall(`${appUrl}/api/v1/mcp`, 'tool_echo', token), label: 'built-in tool_echo via /api/v1/mcp (no upstream)' };
    await request('PUT', `${appUrl}/api/v1/admin/tools/tool_echo`, { 'content-type': 'application/json', authorization: `Bearer ${token}` }, JSON.stringify({ rateLimit: { requests: 1_000_000, window: '1h' } }));
    await expectEcho(direct);
    await expectEcho(rest);
    let viaMcp = true;
    try {
      await expectEcho(federated);
    } catch (error) {
      viaMcp = false;
      log(`The MCP endpoint did not answer as expected (${(error as Error).message.slice(0, 200)}); measuring through REST instead.`);
      federated = rest;
      builtin = { ...rest, label: 'built-in tool_echo via REST (no upstream)', url: `${appUrl}/api/v1/tools/tool_echo/execute` };
    }
    await expectEcho(builtin);

    log(`warm-up: ${WARMUP_SECONDS}s each`);
    for (const target of viaMcp ? [direct, federated, builtin, rest] : [direct, federated, builtin]) await saturate(target, WARMUP_SECONDS);

    const directRounds: Round[] = [];
    const federatedRounds: Round[] = [];
    const builtinRounds: Round[] = [];
    const restRounds: Round[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const d = await saturate(direct, SECONDS);
      const f = await saturate(federated, SECONDS);
      const b = await saturate(builtin, SECONDS);
      directRounds.push(d);
      federatedRounds.push(f);
      builtinRounds.push(b);
      let line =
        `round ${round}/${ROUNDS}: direct ${d.rps.toFixed(0)}/s (p50 ${d.p50} ms), federated ${f.rps.toFixed(0)}/s (p50 ${f.p50} ms), ` +
        `ratio ${(f.rps / d.rps).toFixed(2)}; built-in ${b.rps.toFixed(0)}/s`;
      if (viaMcp) {
        const r = await saturate(rest, SECONDS);
        restRounds.push(r);
        line += `; REST ${r.rps.toFixed(0)}/s`;
      }
      log(line);
    }

    log(`steady ${RATE} calls/s, ${STEADY_SECONDS}s per side, ${STEADY_ROUNDS} rounds`);
    const directSteady: Steady[] = [];
    const federatedSteady: Steady[] = [];
    for (let round = 1; round <= STEADY_ROUNDS; round++) {
      const d = await steady(direct);
      const f = await steady(federated);
      directSteady.push(d);
      federatedSteady.push(f);
      log(
        `round ${round}/${STEADY_ROUNDS}: direct p50 ${d.p50.toFixed(3)} ms (p99 ${d.p99.toFixed(2)}, ${d.achievedRate.toFixed(0)}/s), ` +
          `federated p50 ${f.p50.toFixed(3)} ms (p99 ${f.p99.toFixed(2)}, ${f.achievedRate.toFixed(0)}/s), added ${(f.p50 - d.p50).toFixed(3)} ms`,
      );
    }

    log(`steady ${LOW_RATE} calls/s, ${LOW_SECONDS}s per side, ${STEADY_ROUNDS} rounds`);
    const low = { direct: [] as Steady[], federated: [] as Steady[], builtin: [] as Steady[] };
    for (let round = 1; round <= STEADY_ROUNDS; round++) {
      const d = await steady(direct, LOW_RATE, LOW_SECONDS);
      const f = await steady(federated, LOW_RATE, LOW_SECONDS);
      const b = await steady(builtin, LOW_RATE, LOW_SECONDS);
      low.direct.push(d);
      low.federated.push(f);
      low.builtin.push(b);
      log(`round ${round}/${STEADY_ROUNDS}: direct p50 ${d.p50.toFixed(3)} ms, federated p50 ${f.p50.toFixed(3)} ms, built-in p50 ${b.p50.toFixed(3)} ms`);
    }

    const failures =
      [...directRounds, ...federatedRounds, ...builtinRounds, ...restRounds].reduce((sum, r) => sum + r.non2xx + r.errors, 0) +
      [...directSteady, ...federatedSteady, ...low.direct, ...low.federated, ...low.builtin].reduce((sum, s) => sum + s.failed, 0);
    const directRps = median(directRounds.map((r) => r.rps));
    const federatedRps = median(federatedRounds.map((r) => r.rps));
    const ratio = federatedRps / directRps;
    const added = median(federatedSteady.map((s) => s.p50)) - median(directSteady.map((s) => s.p50));
    pool = new Pool({ connectionString: database.url, max: 1 });
    const [{ executions, audits }] = (
      await pool.query(
        `SELECT (SELECT count(*)::int FROM tool_executions WHERE tool_id = $1) AS executions,
                (SELECT count(*)::int FROM audit_logs WHERE action = 'tool.execute' AND resource = $2) AS audits`,
        [TOOL_ID, `tool:${TOOL_ID}`],
      )
    ).rows;
    log('');
    log(`Federated ${TOOL_ID} vs the same upstream called directly (${VERSION}, Streamable HTTP, PostgreSQL):`);
    log(`  saturation, ${ROUNDS} rounds of ${SECONDS}s, ${CONNECTIONS} connections:`);
    log(`    ${direct.label}: median ${directRps.toFixed(0)} calls/s`);
    log(`    ${federated.label}: median ${federatedRps.toFixed(0)} calls/s`);
    log(`    ${builtin.label}: median ${median(builtinRounds.map((r) => r.rps)).toFixed(0)} calls/s (reference)`);
    if (viaMcp) log(`    ${rest.label}: median ${median(restRounds.map((r) => r.rps)).toFixed(0)} calls/s (reference)`);
    log(`    ratio federated/direct: ${ratio.toFixed(2)} (goal >= ${RATIO_GOAL}) ${ratio >= RATIO_GOAL ? 'MET' : 'NOT MET'}`);
    log(`    ratio federated/built-in through the same gateway: ${(federatedRps / median(builtinRounds.map((r) => r.rps))).toFixed(2)}`);
    log(`  steady ${RATE} calls/s, ${STEADY_ROUNDS} rounds of ${STEADY_SECONDS}s (median of the rounds' p50):`);
    log(`    direct p50 ${median(directSteady.map((s) => s.p50)).toFixed(3)} ms, federated p50 ${median(federatedSteady.map((s) => s.p50)).toFixed(3)} ms`);
    log(`    added median latency: ${added.toFixed(3)} ms (goal <= ${ADDED_LATENCY_GOAL_MS} ms) ${added <= ADDED_LATENCY_GOAL_MS ? 'MET' : 'NOT MET'}`);
    const short = federatedSteady.filter((s) => s.achievedRate < RATE * 0.95 || s.p50 > 50 * Math.max(0.1, median(directSteady.map((d) => d.p50))));
    if (short.length > 0) {
      log(`    note: the federated side did not keep up with ${RATE} calls/s in ${short.length} round(s): its latency there is queueing, not per-call cost`);
    }
    log(`  steady ${LOW_RATE} calls/s (reference: below saturation), median of the rounds' p50:
    direct ${median(low.direct.map((s) => s.p50)).toFixed(3)} ms, federated ${median(low.federated.map((s) => s.p50)).toFixed(3)} ms, built-in ${median(low.builtin.map((s) => s.p50)).toFixed(3)} ms
    added by federation over direct: ${(median(low.federated.map((s) => s.p50)) - median(low.direct.map((s) => s.p50))).toFixed(3)} ms; over the built-in tool: ${(median(low.federated.map((s) => s.p50)) - median(low.builtin.map((s) => s.p50))).toFixed(3)} ms`);
    log(`  rows written for ${TOOL_ID}: ${executions} executions, ${audits} tool.execute audit records; non-2xx or errors: ${failures}`);
    if (failures > 0) process.exitCode = 1;
  } finally {
    await pool?.end();
    await app?.close();
    upstream.child.kill('SIGTERM');
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function startUpstream(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [join(__dirname, 'support', 'echo-upstream.cjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(String(chunk).trim())));
    child.once('exit', (code) => reject(new Error(`the bench upstream exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}/mcp`, child };
}

async function waitForTool(appUrl: string, token: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await request('GET', `${appUrl}/api/v1/tools/${TOOL_ID}`, { authorization: `Bearer ${token}` });
    if (res.status === 200 && JSON.parse(res.text).enabled) return;
    if (Date.now() > deadline) throw new Error(`${TOOL_ID} never appeared in the catalogue: ${res.status} ${res.text}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function expectEcho(target: Target): Promise<void> {
  const res = await request('POST', target.url, target.headers, target.body);
  if (res.status !== 200 || !res.text.includes('hello, bench') || res.text.includes('"isError":true') || res.text.includes('"status":"failed"')) {
    throw new Error(`${target.url} did not echo: ${res.status} ${res.text.slice(0, 500)}`);
  }
}

async function saturate(target: Target, seconds: number): Promise<Round> {
  const headers = Object.entries(target.headers).flatMap(([name, value]) => ['--headers', `${name}=${value}`]);
  const { stdout } = await execFileAsync(
    process.execPath,
    [require.resolve('autocannon/autocannon.js'), '--json', '--connections', String(CONNECTIONS), '--duration', String(seconds), '--method', 'POST', ...headers, '--body', target.body, target.url],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const result = JSON.parse(stdout) as { requests: { average: number }; latency: { p50: number; p99: number }; non2xx: number; errors: number };
  return { rps: result.requests.average, non2xx: result.non2xx, errors: result.errors, p50: result.latency.p50, p99: result.latency.p99 };
}

async function steady(target: Target, rate = RATE, seconds = STEADY_SECONDS): Promise<Steady> {
  const { stdout } = await execFileAsync(
    process.execPath,
    [join(__dirname, 'support', 'open-loop-load.cjs'), JSON.stringify({ url: target.url, headers: target.headers, body: target.body, rate, seconds, connections: 256 })],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return JSON.parse(stdout) as Steady;
}

async function request(method: string, url: string, headers: Record<string, string>, body?: string): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { method, headers, body });
  return { status: response.status, text: await response.text() };
}

runMain(main);
