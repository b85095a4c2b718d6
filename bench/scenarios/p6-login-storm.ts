/**
 * P6. A login storm at the default bcrypt cost (BCRYPT_COST=12) with reads running beside it.
 *
 * The bound: a login costs one bcrypt compare, so a machine cannot do more than
 * cores / (time of one compare) logins per second; the compare is timed in this process right
 * before each storm, and each storm is judged against its own bound. The storm: BENCH_LOGIN_CONNECTIONS clients logging in back to back (closed loop, correct
 * password, the auth rate limit raised out of the way). The reads: GET /api/v1/tools at a steady
 * BENCH_READ_RATE per second (open loop), measured alone ("idle") and during the storm, in
 * alternating rounds. Goals: logins/s >= 0.9x the bound; the reads' p99 during the storm at most
 * 2x their idle p99.
 */
import * as bcrypt from 'bcrypt';
import { availableParallelism } from 'node:os';
import { Pool } from 'pg';
import { median } from '../support/bench-util';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startGateway } from '../support/gateway';
import { Closed, closedLoop, Open, openLoop, Target } from '../support/load';
import { fmt, Row, Scenario, times } from '../support/report';
import { alternate, medianOf, pairedRatio } from '../support/rounds';

const COST = 12;
const BOUND_GOAL = 0.9;
const P99_GOAL = 2;

interface Measured {
  logins?: Closed;
  /** Logins per second in the storm's steady part, from the sessions the logins created. */
  loginRate?: number;
  /** One bcrypt compare, timed right before this storm (ms). */
  compareMs?: number;
  reads: Open;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

export const p6: Scenario = {
  id: 'P6',
  what: `login storm (bcrypt cost ${COST}) with reads beside it`,
  async run(s): Promise<Row> {
    const gateway = await startGateway({ BCRYPT_COST: String(COST) });
    const pool = new Pool({ connectionString: gateway.database.url, max: 1 });
    // Logins take a good part of a second each: a storm needs seconds to reach its steady state.
    const plan = { ...s, seconds: Math.max(s.seconds, 3) };
    const count = async () => Number((await pool.query(`SELECT count(*)::int AS n FROM sessions`)).rows[0].n);
    /** Waits until no session has been opened for a second (at most 20 s). */
    const drain = async () => {
      const deadline = Date.now() + 20_000;
      let last = await count();
      while (Date.now() < deadline) {
        await sleep(1_000);
        const now = await count();
        if (now === last) return;
        last = now;
      }
    };
    try {
      const cores = availableParallelism();

      const login: Target = {
        url: `${gateway.url}/api/v1/auth/login`,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD }),
      };
      const read: Target = { url: `${gateway.url}/api/v1/tools`, method: 'GET', headers: { authorization: `Bearer ${gateway.token}` } };
      const [idle, storm] = await alternate<Measured>(
        'P6',
        [
          { label: 'reads alone', measure: async (sec) => ({ reads: await openLoop(read, s.readRate, sec, 64) }) },
          {
            label: 'reads + login storm',
            measure: async (sec) => {
              // The rate comes from the sessions the logins opened: (n - 1) / (last - first start
              // time), so neither the storm's ramp-up nor the logins its end cuts off dilute it.
              // Logins cut off by the end still finish on the server: wait for them, so they do not
              // spill into the next round (and count them only when the storm itself finished fewer than two).
              // The bound is timed right before each storm (nothing else runs then), so a machine
              // shared with other work is judged against what it could do at that moment.
              const compareMs = timeCompare(s.smoke ? 2 : 5);
              const since = new Date();
              const [logins, reads] = await Promise.all([closedLoop(login, sec, s.loginConnections), openLoop(read, s.readRate, sec, 64)]);
              const ended = Date.now();
              await drain();
              const all = (
                await pool.query(`SELECT started_at FROM sessions WHERE started_at >= $1 ORDER BY started_at`, [since])
              ).rows.map((row: { started_at: Date }) => row.started_at.getTime());
              const inStorm = all.filter((at: number) => at <= ended);
              const started = inStorm.length >= 2 ? inStorm : all;
              const loginRate = started.length >= 2 ? ((started.length - 1) * 1000) / (started[started.length - 1] - started[0]) : NaN;
              return { logins, reads, loginRate, compareMs };
            },
          },
        ],
        plan,
        ([i, st]) =>
          `idle reads p99 ${i.reads.p99.toFixed(2)} ms; bcrypt compare ${st.compareMs!.toFixed(0)} ms, bound ${fmt(cores / (st.compareMs! / 1000))}/s; ` +
          `storm ${fmt(st.loginRate!)} logins/s (p99 ${st.logins!.p99} ms), ` +
          `reads p99 ${st.reads.p99.toFixed(2)} ms (${fmt(st.reads.achievedRate)}/s)`,
      );
      const loginsPerSecond = medianOf(storm, (r) => r.loginRate!);
      const compareMs = medianOf(storm, (r) => r.compareMs!);
      const bound = cores / (compareMs / 1000);
      const idleP99 = medianOf(idle, (r) => r.reads.p99);
      const stormP99 = medianOf(storm, (r) => r.reads.p99);
      const ofBound = median(storm.map((r) => r.loginRate! / (cores / (r.compareMs! / 1000))));
      const p99Ratio = pairedRatio(storm, idle, (r) => r.reads.p99);
      const failures =
        storm.reduce((sum, r) => sum + r.logins!.non2xx + r.logins!.errors, 0) +
        [...idle, ...storm].reduce((sum, r) => sum + r.reads.failed, 0);
      return {
        id: 'P6',
        what: p6.what,
        baseline: `bound ${fmt(bound)} logins/s (${cores} cores ÷ ${compareMs.toFixed(0)} ms); idle reads p99 ${idleP99.toFixed(2)} ms`,
        candidate: `${fmt(loginsPerSecond)} logins/s; reads p99 ${stormP99.toFixed(2)} ms`,
        ratio: `${times(ofBound)} of bound; p99 ${times(p99Ratio)}`,
        goal: `≥ ${BOUND_GOAL}× bound; p99 ≤ ${P99_GOAL}×`,
        met: ofBound >= BOUND_GOAL && p99Ratio <= P99_GOAL,
        notes: [
          `P6: ${s.loginConnections} login connections, rounds of ${plan.seconds}s, logins/s from the start times of the sessions each storm opened, (n - 1) / (last - first) ` +
            `(autocannon's own count: ${fmt(medianOf(storm, (r) => r.logins!.okRps))}/s); reads GET /api/v1/tools at ${s.readRate}/s (open loop); ` +
            `storm logins p99 ${median(storm.map((r) => r.logins!.p99))} ms`,
        ],
        problems: failures > 0 ? [`P6: ${failures} non-2xx answers or errors`] : [],
      };
    } finally {
      await pool.end();
      await gateway.close();
    }
  },
};

/** Median wall time of one bcrypt compare at COST (synchronous, nothing else running in this process). */
function timeCompare(samples: number): number {
  const hash = bcrypt.hashSync(ADMIN_PASSWORD, COST);
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    if (!bcrypt.compareSync(ADMIN_PASSWORD, hash)) throw new Error('bcrypt compare failed');
    times.push(performance.now() - started);
  }
  return median(times);
}
