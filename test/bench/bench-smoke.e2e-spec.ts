import { spawn } from 'node:child_process';
import { join } from 'node:path';

/**
 * The benchmark suite's smoke run: `npm run bench` with BENCH_SMOKE=1 (one round of about a
 * second per scenario, 50 WebSocket sessions, a 2 s soak, one cold start each) must run every
 * scenario to the end and print a table row of figures for each. It asserts that figures came
 * out, never how fast anything was: that is the benchmarks' job, not CI's.
 *
 * PostgreSQL only: the scenarios themselves pick their databases (the issue measures on
 * PostgreSQL; P8 also starts the embedded default), so there is nothing to run twice. P7 and P8
 * start the built server (dist/, or TEST_SERVER_DIST), as `npm test` builds it first.
 */
const ROOT = join(__dirname, '..', '..');

function runBench(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, BENCH_SMOKE: '1', TS_NODE_TRANSPILE_ONLY: 'true' };
  delete env.NODE_OPTIONS; // jest's --experimental-vm-modules is not for the bench process
  for (const name of Object.keys(env))
    if (name.startsWith('BENCH_') && name !== 'BENCH_SMOKE' && name !== 'BENCH_SERVER_DIST') delete env[name];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', 'ts-node/register', '-r', 'tsconfig-paths/register', join(ROOT, 'bench', 'run.ts')], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The summary table's rows, by id, as cells: id, what, baseline, candidate, median ratio, goal, met?. */
function tableRows(stdout: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const match = /^\|\s*(P\d[A-Z]?(?:-[A-Z]+)?)\s*\|/.exec(line);
    if (match)
      rows.set(
        match[1],
        line
          .split('|')
          .slice(1, -1)
          .map((cell) => cell.trim()),
      );
  }
  return rows;
}

const NUMBER = /\d+(\.\d+)?/;
const RATIO = /\d+\.\d\d×/;

describe('npm run bench (smoke: every scenario, tiny settings)', () => {
  let result: { code: number | null; stdout: string; stderr: string };
  let rows: Map<string, string[]>;

  beforeAll(async () => {
    result = await runBench();
    rows = tableRows(result.stdout);
  }, 600_000); // twelve rows, each scenario starting its own servers

  it("runs every scenario (P1..P9, with P1-IDP and P6B, and P1's reference row P1-NEST) to the end and exits 0", () => {
    if (result.code !== 0) throw new Error(`bench exited ${result.code}\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-3000)}`);
    expect([...rows.keys()]).toEqual(['P1', 'P1-NEST', 'P1-IDP', 'P2', 'P3', 'P4', 'P5', 'P6', 'P6B', 'P7', 'P8', 'P9']);
  });

  it('prints figures in every row: candidate, ratio against the baseline, goal and a verdict', () => {
    for (const [id, [, what, baseline, candidate, ratio, goal, met]] of rows) {
      expect({ id, failed: candidate.startsWith('FAILED') }).toEqual({ id, failed: false });
      expect(what.length).toBeGreaterThan(0);
      expect(candidate).toMatch(NUMBER);
      // A reference row has no goal of its own, so no verdict.
      if (id === 'P1-NEST') expect({ id, goal, met }).toEqual({ id, goal: expect.stringMatching(/^– \(reference/), met: '–' });
      else {
        expect(goal).toMatch(NUMBER);
        expect(['yes', 'no']).toContain(met);
      }
      if (!['P7', 'P8'].includes(id)) {
        expect({ id, baseline }).toEqual({ id, baseline: expect.stringMatching(NUMBER) });
        expect({ id, ratio }).toEqual({ id, ratio: expect.stringMatching(RATIO) });
      }
    }
    expect(rows.get('P1')![4]).toMatch(/p99 \d+\.\d\d×/);
    expect(rows.get('P1-IDP')![4]).toMatch(/p99 \d+\.\d\d×/);
    expect(rows.get('P4')![4]).toMatch(/ms p50/);
  });

  it('puts the CPU per call beside the throughput of P1 (and its reference), P3 and P4: both sides and their ratio', () => {
    for (const id of ['P1', 'P1-NEST', 'P1-IDP', 'P3', 'P4']) {
      const [, , baseline, candidate, ratio] = rows.get(id)!;
      expect({ id, baseline, candidate, ratio }).toEqual({
        id,
        baseline: expect.stringMatching(/[\d,]+(\.\d+)? µs CPU\/call/),
        candidate: expect.stringMatching(/[\d,]+(\.\d+)? µs CPU\/call/),
        ratio: expect.stringMatching(/^\d+\.\d\d×; .*CPU\/call \d+\.\d\d×/),
      });
    }
    // What the database beside the gateway spent per call (P3, P4): a figure, read from this machine's PostgreSQL.
    const notes = result.stdout.split('\n');
    for (const id of ['P3', 'P4']) {
      const line = notes.find((note) => note.startsWith(`- ${id}: the local PostgreSQL server's processes spent a median `));
      expect({ id, figure: /median ([\d,.]+|n\/a) µs CPU per/.exec(line ?? '')?.[1] }).toEqual({
        id,
        figure: expect.stringMatching(/^[\d,]+(\.\d+)?$/),
      });
    }
    expect(rows.get('P6')![4]).toMatch(/of bound; p99 \d+\.\d\d×/);
    expect(rows.get('P9')![4]).toMatch(/^get \d+\.\d\d×; read \d+\.\d\d×$/);
  });

  it('P7 holds every smoke session and reports KB per session and the soak growth; P8 times both databases', () => {
    const [, , , p7Candidate, p7Ratio] = rows.get('P7')!;
    expect(p7Candidate).toMatch(/^50\/50 held; -?\d+\.\d KB\/session; soak RSS/);
    expect(p7Ratio).toMatch(/^growth -?\d+\.\d %$/);
    expect(rows.get('P8')![3]).toMatch(/^embedded \d+\.\d\d s \(fresh DATA_DIR\); PostgreSQL \d+\.\d\d s \(first-ever \d+\.\d\d s\)$/);
  });
});
