/**
 * P1T and P3T. What tracing costs, on P1's and P3's requests (GET /api/v1/tools; MCP tools/call
 * of tool_echo, 2026-07-28): the server from source as a process of its own, three ways, in
 * alternating rounds:
 *   - `off`: this tree, tracing off (no OTEL_* set: the SDK is never loaded);
 *   - `on`: this tree, tracing on at 100 % sampling (always_on), OTLP/HTTP protobuf to a sink in
 *     this process that accepts and discards every export (its CPU is not the server's);
 *   - `main` (with BENCH_MAIN_ROOT, a checkout of main with its node_modules): main's code.
 * On a shared, loaded machine throughput moves with the neighbours, so the figure that decides is
 * the server's CPU per call: user + system time of its process (/proc/<pid>/stat) over the round,
 * divided by the calls it answered. Goal: tracing off within 3 % of main's CPU per call.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, TestDatabase } from '../../test/support/test-database';
import { urlOf } from '../support/bench-util';
import { cpuSeconds } from '../support/cpu';
import { benchEnv, loginAdmin, raiseToolLimit, ServerProcess, spawnServer, waitReady } from '../support/gateway';
import { closedLoop, Target } from '../support/load';
import { mcpRequest } from '../support/mcp-request';
import { fmt, Row, Scenario } from '../support/report';
import { alternate, medianOf, pairedRatio } from '../support/rounds';
import type { BenchSettings } from '../support/settings';

const OFF_GOAL = 1.03;

interface Measured {
  rps: number;
  /** Server CPU per answered call, microseconds. */
  cpuUs: number;
  failures: number;
}

interface Variant {
  label: 'main' | 'off' | 'on';
  server: ServerProcess;
  database: TestDatabase;
  dataDir: string;
  target: Target;
}

type Workload = 'P1' | 'P3';

function scenario(workload: Workload): Scenario {
  const what =
    workload === 'P1'
      ? 'GET /tools: tracing off vs main, tracing on (100 %) vs off; server CPU per call'
      : 'MCP tools/call tool_echo: tracing off vs main, tracing on (100 %) vs off; server CPU per call';
  return { id: `${workload}T`, what, run: (s) => run(workload, what, s) };
}

export const p1t = scenario('P1');
export const p3t = scenario('P3');

async function run(workload: Workload, what: string, s: BenchSettings): Promise<Row> {
  const sink = await startSink();
  const variants: Variant[] = [];
  try {
    const mainRoot = process.env.BENCH_MAIN_ROOT;
    const labels: Array<Variant['label']> = mainRoot ? ['main', 'off', 'on'] : ['off', 'on'];
    for (const label of labels) {
      const tracing: Record<string, string> =
        label === 'on'
          ? {
              OTEL_TRACES_EXPORTER: 'otlp',
              OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
              OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
              OTEL_TRACES_SAMPLER: 'always_on',
            }
          : {};
      variants.push(await startVariant(label, workload, tracing, label === 'main' ? mainRoot : undefined));
    }
    const rounds = await alternate<Measured>(
      `${workload}T`,
      variants.map((variant) => ({ label: variant.label, measure: (sec) => measure(variant, sec, s.connections) })),
      s,
      (results) => results.map((r, i) => `${variants[i].label} ${fmt(r.rps)}/s ${r.cpuUs.toFixed(0)} µs CPU/call`).join(', '),
    );
    const of = (label: Variant['label']) => rounds[variants.findIndex((v) => v.label === label)];
    const cpu = (label: Variant['label']) => medianOf(of(label), (r) => r.cpuUs);
    const rps = (label: Variant['label']) => medianOf(of(label), (r) => r.rps);
    const onCost = pairedRatio(of('on'), of('off'), (r) => r.cpuUs);
    const onRps = pairedRatio(of('on'), of('off'), (r) => r.rps);
    const offCost = mainRoot ? pairedRatio(of('off'), of('main'), (r) => r.cpuUs) : undefined;
    const offRps = mainRoot ? pairedRatio(of('off'), of('main'), (r) => r.rps) : undefined;
    const failures = rounds.flat().reduce((sum, r) => sum + r.failures, 0);
    return {
      id: `${workload}T`,
      what,
      baseline: mainRoot
        ? `main: ${cpu('main').toFixed(0)} µs CPU/call, ${fmt(rps('main'))}/s`
        : 'main not measured (BENCH_MAIN_ROOT unset)',
      candidate: `off: ${cpu('off').toFixed(0)} µs, ${fmt(rps('off'))}/s; on: ${cpu('on').toFixed(0)} µs, ${fmt(rps('on'))}/s`,
      ratio:
        `${offCost === undefined ? '' : `off/main CPU ${offCost.toFixed(3)}×, rps ${offRps!.toFixed(3)}×; `}` +
        `on/off CPU ${onCost.toFixed(3)}×, rps ${onRps.toFixed(3)}×`,
      goal: `off/main CPU ≤ ${OFF_GOAL}×; on: reported`,
      met: offCost === undefined ? undefined : offCost <= OFF_GOAL,
      notes: [
        `${workload}T: CPU per call = the server process's user+sys time over a round / calls answered in it; ` +
          `"on" exports every span (always_on) over OTLP/HTTP protobuf to a discarding sink (${sink.spans()} export requests received)`,
      ],
      problems: failures > 0 ? [`${workload}T: ${failures} non-2xx answers or errors`] : [],
    };
  } finally {
    for (const variant of variants) {
      await variant.server.stop();
      await variant.database.drop();
      rmSync(variant.dataDir, { recursive: true, force: true });
    }
    await new Promise((done) => sink.server.close(done));
  }
}

async function startVariant(label: Variant['label'], workload: Workload, tracing: Record<string, string>, root?: string): Promise<Variant> {
  const database = await createTestDatabase('smcp_bench');
  const dataDir = mkdtempSync(join(tmpdir(), 'smcp-bench-'));
  // Same as P1: the request log on (info), written to /dev/null.
  const server = await spawnServer('source', benchEnv(database, dataDir, { LOG_LEVEL: 'info', ...tracing }), { root });
  await waitReady(server, 180_000, 100);
  const token = await loginAdmin(server.url);
  let target: Target;
  if (workload === 'P1') {
    target = { url: `${server.url}/api/v1/tools`, method: 'GET', headers: { authorization: `Bearer ${token}` } };
  } else {
    await raiseToolLimit(server.url, token, 'tool_echo');
    target = mcpRequest(`${server.url}/api/v1/mcp`, 'tools/call', { name: 'tool_echo', arguments: { message: 'hello, bench' } }, token);
  }
  const sample = await fetch(target.url, { method: target.method, headers: target.headers, body: target.body });
  const text = await sample.text();
  if (sample.status !== 200) throw new Error(`${label}: ${target.method} ${target.url}: ${sample.status} ${text.slice(0, 300)}`);
  return { label, server, database, dataDir, target };
}

async function measure(variant: Variant, seconds: number, connections: number): Promise<Measured> {
  const before = cpuSeconds(variant.server.pid);
  const result = await closedLoop(variant.target, seconds, connections);
  const used = cpuSeconds(variant.server.pid) - before;
  return { rps: result.rps, cpuUs: (used / Math.max(result.total, 1)) * 1e6, failures: result.non2xx + result.errors };
}

/** An OTLP/HTTP endpoint that answers every export with 200 and keeps nothing. */
async function startSink(): Promise<{ server: Server; url: string; spans(): number }> {
  let exports = 0;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      exports += 1;
      response.writeHead(200, { 'content-type': request.headers['content-type'] ?? 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, url: urlOf(server.address() as AddressInfo), spans: () => exports };
}
