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
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Pool } from 'pg';
import { median, post } from '../support/bench-util';
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

const execFileAsync = promisify(execFile);

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

interface SignInStorm {
  completed: number;
  failed: number;
  /** Sign-ins per second in the steady part: (n - 1) / (last - first completion) within the run. */
  rate: number;
  p50: number;
  p99: number;
  firstError: string | null;
  /** One bcrypt compare, timed right before this storm (ms). */
  compareMs: number;
}

/**
 * P6B. The same storm on the OAuth sign-in page (issue 16): BENCH_LOGIN_CONNECTIONS browsers-to-be
 * signing in back to back, each a GET of the authorization URL, a GET of the page and a POST of
 * the password (bench/support/sign-in-storm.cjs, in a child process). A sign-in costs one bcrypt
 * compare too, so it has the same bound; the goal is the REST storm's: at least 0.9x the bound.
 */
export const p6SignIn: Scenario = {
  id: 'P6B',
  what: `sign-in page storm (bcrypt cost ${COST}, OAuth authorize + page + password)`,
  async run(s): Promise<Row> {
    const gateway = await startGateway({ BCRYPT_COST: String(COST) });
    try {
      const cores = availableParallelism();
      const client = await post(
        `${gateway.url}/api/v1/admin/oauth/clients`,
        { clientName: 'bench', redirectUris: ['http://127.0.0.1:9/callback'] },
        gateway.token,
      );
      const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
      const authorizeUrl =
        `${gateway.url}/oauth/authorize?` +
        new URLSearchParams({
          response_type: 'code',
          client_id: String(client.clientId),
          redirect_uri: 'http://127.0.0.1:9/callback',
          scope: 'mcp:tools',
          resource: `${gateway.url}/api/v1/mcp`,
          code_challenge: challenge,
          code_challenge_method: 'S256',
        }).toString();
      const plan = { ...s, seconds: Math.max(s.seconds, 5) };
      const storm = async (seconds: number): Promise<SignInStorm> => {
        const compareMs = timeCompare(s.smoke ? 2 : 5);
        const { stdout } = await execFileAsync(
          process.execPath,
          [
            join(__dirname, '..', 'support', 'sign-in-storm.cjs'),
            JSON.stringify({ authorizeUrl, email: ADMIN_EMAIL, password: ADMIN_PASSWORD, seconds, connections: s.loginConnections }),
          ],
          { maxBuffer: 1024 * 1024 },
        );
        return { ...(JSON.parse(stdout) as Omit<SignInStorm, 'compareMs'>), compareMs };
      };
      const [rounds] = await alternate<SignInStorm>(
        'P6B',
        [{ label: 'sign-in page storm', measure: storm }],
        plan,
        ([r]) =>
          `bcrypt compare ${r.compareMs.toFixed(0)} ms, bound ${fmt(cores / (r.compareMs / 1000))}/s; ` +
          `${fmt(r.rate)} sign-ins/s (p50 ${r.p50.toFixed(0)} ms, p99 ${r.p99.toFixed(0)} ms), ${r.failed} failed`,
      );
      const compareMs = medianOf(rounds, (r) => r.compareMs);
      const bound = cores / (compareMs / 1000);
      const rate = medianOf(rounds, (r) => r.rate);
      const ofBound = median(rounds.map((r) => r.rate / (cores / (r.compareMs / 1000))));
      const failed = rounds.reduce((sum, r) => sum + r.failed, 0);
      return {
        id: 'P6B',
        what: p6SignIn.what,
        baseline: `bound ${fmt(bound)} sign-ins/s (${cores} cores ÷ ${compareMs.toFixed(0)} ms)`,
        candidate: `${fmt(rate)} sign-ins/s; p99 ${medianOf(rounds, (r) => r.p99).toFixed(0)} ms`,
        ratio: `${times(ofBound)} of bound`,
        goal: `≥ ${BOUND_GOAL}× bound`,
        met: ofBound >= BOUND_GOAL,
        notes: [
          `P6B: ${s.loginConnections} sign-in loops of GET /oauth/authorize, GET the page, POST the password (303), rounds of ${plan.seconds}s; ` +
            `rate = (n - 1) / (last - first completion time) of the sign-ins finished within each round`,
        ],
        problems: failed > 0 ? [`P6B: ${failed} sign-ins failed (first: ${rounds.find((r) => r.firstError)?.firstError})`] : [],
      };
    } finally {
      await gateway.close();
    }
  },
};
