/**
 * P1B (run only when named): where P1's time goes. The P1 request (GET /api/v1/tools with our
 * own token, request log at info to /dev/null) against gateways that each have one part turned
 * off, all measured in the same alternation: the full gateway, then without the throttler's count,
 * without metrics, without the request log (LOG_LEVEL=warn), without authentication (its principal
 * computed once and reused), without the whole guard chain, and with all of those off. Each row
 * gives the variant's rate and CPU per request against the full gateway's, and the CPU per request
 * the part costs (full minus variant). The switches are bench-only (support/p1-switches.ts,
 * preloaded into the variant's process by BENCH_P1_OFF); nothing in the server reads them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, TestDatabase } from '../../test/support/test-database';
import { median } from '../support/bench-util';
import { benchEnv, loginAdmin, ServerProcess, spawnServer, waitReady } from '../support/gateway';
import { Metered, meteredLoop, Target } from '../support/load';
import { cpuPerCall, fmt, Row, Scenario, times } from '../support/report';
import { alternate, medianOf, pairedRatio } from '../support/rounds';

interface Variant {
  label: string;
  /** BENCH_P1_OFF for its process. */
  off: string;
  /** The request log off (LOG_LEVEL=warn). */
  noLog?: boolean;
}

const VARIANTS: Variant[] = [
  { label: 'full', off: '' },
  { label: 'no throttler', off: 'throttler' },
  { label: 'no metrics', off: 'metrics' },
  { label: 'no request log', off: '', noLog: true },
  { label: 'no authentication', off: 'auth' },
  { label: 'no guard chain', off: 'guards' },
  { label: 'all four off', off: 'throttler,metrics,guards', noLog: true },
];

interface Running {
  variant: Variant;
  server: ServerProcess;
  database: TestDatabase;
  dataDir: string;
  target?: Target;
}

export const p1b: Scenario = {
  id: 'P1B',
  what: 'P1 breakdown: one part of the pipeline off at a time',
  async run(s): Promise<Row[]> {
    const running: Running[] = [];
    try {
      for (const variant of VARIANTS) {
        const database = await createTestDatabase('smcp_bench');
        const dataDir = mkdtempSync(join(tmpdir(), 'smcp-bench-'));
        const env = benchEnv(database, dataDir, { LOG_LEVEL: variant.noLog ? 'warn' : 'info', BENCH_P1_OFF: variant.off });
        const server = await spawnServer('source', env, { preload: [join(__dirname, '..', 'support', 'p1-switches.ts')] });
        running.push({ variant, server, database, dataDir });
      }
      for (const r of running) {
        await waitReady(r.server, 240_000, 100);
        const token = await loginAdmin(r.server.url);
        r.target = { url: `${r.server.url}/api/v1/tools`, method: 'GET', headers: { authorization: `Bearer ${token}` } };
        const sample = await fetch(r.target.url, { headers: r.target.headers });
        const text = await sample.text();
        if (sample.status !== 200) throw new Error(`${r.variant.label}: GET /api/v1/tools: ${sample.status} ${text.slice(0, 300)}`);
      }
      const results = await alternate<Metered>(
        'P1B',
        running.map((r) => ({
          label: r.variant.label,
          measure: (sec: number) => meteredLoop(r.target!, sec, s.connections, [r.server.pid]),
        })),
        s,
        (round) => round.map((m, i) => `${running[i].variant.label} ${fmt(m.rps)}/s ${fmt(m.cpuUs)} µs`).join(', '),
      );
      const [full] = results;
      const fullCpu = medianOf(full, (r) => r.cpuUs);
      const failures = results.flat().reduce((sum, r) => sum + r.non2xx + r.errors, 0);
      return running.slice(1).map((r, k) => {
        const rounds = results[k + 1];
        const cpu = medianOf(rounds, (m) => m.cpuUs);
        const saved = pairedDifference(full, rounds);
        return {
          id: `P1B-${k + 1}`,
          what: r.variant.label,
          baseline: `${fmt(medianOf(full, (m) => m.rps))} req/s, ${cpuPerCall(fullCpu)} (full gateway)`,
          candidate: `${fmt(medianOf(rounds, (m) => m.rps))} req/s, ${cpuPerCall(cpu)}`,
          ratio: `${times(pairedRatio(rounds, full, (m) => m.rps))}; CPU/call ${times(pairedRatio(rounds, full, (m) => m.cpuUs))}; the part costs ${fmt(saved)} µs CPU/request`,
          goal: '– (breakdown)',
          met: undefined,
          problems: k === 0 && failures > 0 ? [`P1B: ${failures} non-2xx answers or errors`] : [],
        };
      });
    } finally {
      for (const r of running) {
        await r.server.stop();
        await r.database.drop();
        rmSync(r.dataDir, { recursive: true, force: true });
      }
    }
  },
};

/** Median over rounds of (full's CPU per request - the variant's), in µs: what the part costs. */
function pairedDifference(full: Metered[], variant: Metered[]): number {
  return median(full.map((m, i) => m.cpuUs - variant[i].cpuUs));
}
