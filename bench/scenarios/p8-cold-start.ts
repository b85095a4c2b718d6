/**
 * P8. Cold start to ready: the time from spawning the built server (`node dist/.../main.js`, as
 * `npm run start:prod` does; BENCH_SERVER_DIST or TEST_SERVER_DIST for another build) to the
 * first 200 from GET /api/v1/ready, polled every 10 ms. Default settings otherwise (bcrypt cost
 * 12, log at info to /dev/null), no first admin.
 *   - embedded default (PGlite) in a fresh DATA_DIR; then a restart on that DATA_DIR (reference);
 *   - PostgreSQL: a fresh database's first-ever start (it runs the migrations), then a start with
 *     the migrations already applied, which is what the goal is about.
 * Goals: embedded under 5 s; PostgreSQL under 2 s.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase } from '../../test/support/test-database';
import { builtMain, spawnServer, waitReady } from '../support/gateway';
import { Row, Scenario } from '../support/report';
import { alternate, medianOf } from '../support/rounds';

const EMBEDDED_GOAL_S = 5;
const POSTGRES_GOAL_S = 2;

interface Starts {
  /** Seconds to ready: the first start (fresh data dir or database), then a second one on the same data. */
  first: number;
  again: number;
}

function env(extra: Record<string, string>): Record<string, string> {
  return {
    NODE_ENV: 'development',
    HOST: '127.0.0.1',
    JWT_SECRET: randomBytes(32).toString('hex'),
    ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    ...extra,
  };
}

/** Seconds from spawn to the first 200 on /ready; the server is stopped (gracefully) afterwards. */
async function timeStart(environment: Record<string, string>): Promise<number> {
  const started = performance.now();
  const server = await spawnServer('dist', environment);
  try {
    const ready = await waitReady(server, 60_000, 10);
    return (ready - started) / 1000;
  } finally {
    await server.stop();
  }
}

/** The restart on an existing DATA_DIR is a reference only; the smoke run skips it (NaN). */
async function embedded(restart: boolean): Promise<Starts> {
  const dataDir = mkdtempSync(join(tmpdir(), 'smcp-bench-cold-'));
  try {
    const environment = env({ DATA_DIR: dataDir });
    return { first: await timeStart(environment), again: restart ? await timeStart(environment) : NaN };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function postgres(): Promise<Starts> {
  const database = await createTestDatabase('smcp_bench');
  const dataDir = mkdtempSync(join(tmpdir(), 'smcp-bench-cold-'));
  try {
    const environment = env({ DATA_DIR: dataDir, DATABASE_URL: database.url });
    return { first: await timeStart(environment), again: await timeStart(environment) };
  } finally {
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export const p8: Scenario = {
  id: 'P8',
  what: 'cold start to ready (built server)',
  async run(s): Promise<Row> {
    const main = builtMain();
    const [embeddedStarts, postgresStarts] = await alternate<Starts>(
      'P8',
      [
        { label: 'embedded', measure: () => embedded(!s.smoke) },
        { label: 'PostgreSQL', measure: () => postgres() },
      ],
      { rounds: s.coldStarts, seconds: 0, warmupSeconds: 0 },
      ([e, p]) =>
        `embedded fresh ${e.first.toFixed(2)} s, restart ${e.again.toFixed(2)} s; PostgreSQL first-ever ${p.first.toFixed(2)} s, migrations applied ${p.again.toFixed(2)} s`,
    );
    const embeddedFresh = medianOf(embeddedStarts, (r) => r.first);
    const embeddedAgain = medianOf(embeddedStarts, (r) => r.again);
    const postgresFirst = medianOf(postgresStarts, (r) => r.first);
    const postgresMigrated = medianOf(postgresStarts, (r) => r.again);
    return {
      id: 'P8',
      what: p8.what,
      baseline: '–',
      candidate: `embedded ${embeddedFresh.toFixed(2)} s (fresh DATA_DIR); PostgreSQL ${postgresMigrated.toFixed(2)} s (first-ever ${postgresFirst.toFixed(2)} s)`,
      ratio: '–',
      goal: `embedded < ${EMBEDDED_GOAL_S} s; PostgreSQL < ${POSTGRES_GOAL_S} s`,
      met: embeddedFresh < EMBEDDED_GOAL_S && postgresMigrated < POSTGRES_GOAL_S,
      notes: [
        `P8: ${main}; median of ${s.coldStarts} start(s) each; embedded restart on an existing DATA_DIR ${Number.isNaN(embeddedAgain) ? 'not measured (smoke)' : `${embeddedAgain.toFixed(2)} s`}; ` +
          'PostgreSQL goal judged on a start with the migrations already applied',
      ],
    };
  },
};
