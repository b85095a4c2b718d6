/**
 * The benchmark suite (issue 8): every scenario starts what it needs (a fresh PostgreSQL
 * database, baselines, upstreams, load generators in child processes on loopback), warms up,
 * alternates baseline and candidate over rounds and reports medians and ratios; at the end one
 * table of all of them, in Markdown. P1, P3 and P4 print the serving processes' CPU time per call
 * (user + system from /proc/<pid>/stat, in `getconf CLK_TCK` ticks) beside each rate, and P1 adds
 * a reference row, P1-NEST (the bare route on Nest-on-Fastify: the framework's own share).
 *
 *   npm run bench                 all scenarios, P1..P9, with P1-IDP (P1 with an IdP's token) and P6B (the sign-in page's storm)
 *   npm run bench -- P3 p5        only those (case does not matter)
 *   BENCH_MAIN_ROOT=../main npm run bench -- P1T P3T   what tracing costs (off vs main, on vs off); only when named
 *   npm run bench -- P4U          a federated call with auth user-secret against auth gateway (issue 17; only when named)
 *   npm run bench -- P1B          where P1's time goes: the gateway with one part off at a time (only when named;
 *                                 the bench-only switches are support/p1-switches.ts, BENCH_P1_OFF)
 *   BENCH_SMOKE=1 npm run bench   one tiny round of each (what test/bench runs)
 *
 * Knobs (environment): BENCH_ROUNDS, BENCH_SECONDS, BENCH_WARMUP_S, BENCH_CONNECTIONS; P4
 * BENCH_RATE (the steady phase's rate; unset: half the direct path's saturation rate of the same run), BENCH_STEADY_SECONDS, BENCH_STEADY_ROUNDS, BENCH_LOW_RATE, BENCH_LOW_SECONDS; P6
 * BENCH_LOGIN_CONNECTIONS, BENCH_READ_RATE; P7 BENCH_WS_SESSIONS, BENCH_IDLE_S, BENCH_SOAK_S,
 * BENCH_SOAK_RATE; P8 BENCH_COLD_STARTS; P1T/P3T (tracing cost) BENCH_MAIN_ROOT (a checkout of main, with its
 * node_modules, measured beside this tree); P7/P8 run the built server (BENCH_SERVER_DIST, else
 * TEST_SERVER_DIST, else dist/). PostgreSQL: TEST_PG_ADMIN_URL.
 */
import 'reflect-metadata';
import { availableParallelism, cpus } from 'node:os';
import { log, runMain } from './support/bench-util';
import { failedRow, formatTable, Row, Scenario } from './support/report';
import { benchSettings } from './support/settings';
import { p1, p1Idp } from './scenarios/p1-tools-list';
import { p2 } from './scenarios/p2-tool-execute';
import { p3 } from './scenarios/p3-mcp-call';
import { p4 } from './scenarios/p4-federated-call';
import { p4u } from './scenarios/p4u-user-credential-call';
import { p5 } from './scenarios/p5-federated-list';
import { p6, p6SignIn } from './scenarios/p6-login-storm';
import { p7 } from './scenarios/p7-ws-sessions';
import { p8 } from './scenarios/p8-cold-start';
import { p9 } from './scenarios/p9-federated-features';
import { p1t, p3t } from './scenarios/pt-tracing-cost';
import { p1b } from './scenarios/p1b-breakdown';

const SCENARIOS: Scenario[] = [p1, p1Idp, p2, p3, p4, p5, p6, p6SignIn, p7, p8, p9];
/** Run only when named: P1T/P3T compare against another checkout (BENCH_MAIN_ROOT); P1B is P1's breakdown; P4U per-user credentials. */
const ON_REQUEST: Scenario[] = [p1t, p3t, p1b, p4u];

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).map((arg) => arg.toUpperCase());
  const known = [...SCENARIOS, ...ON_REQUEST];
  const unknown = wanted.filter((id) => !known.some((scenario) => scenario.id === id));
  if (unknown.length > 0)
    throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${known.map((scenario) => scenario.id).join(', ')}`);
  const chosen = wanted.length > 0 ? known.filter((scenario) => wanted.includes(scenario.id)) : SCENARIOS;
  const settings = benchSettings();
  log(
    `bench: ${chosen.map((scenario) => scenario.id).join(' ')}${settings.smoke ? ' (smoke)' : ''}; ${settings.rounds} rounds of ${settings.seconds}s, ` +
      `warm-up ${settings.warmupSeconds}s, ${settings.connections} connections; ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.version}`,
  );
  const rows: Row[] = [];
  for (const scenario of chosen) {
    const started = Date.now();
    log(`[${scenario.id}] ${scenario.what}`);
    try {
      const result = await scenario.run(settings);
      rows.push(...(Array.isArray(result) ? result : [result]));
    } catch (error) {
      process.stderr.write(`[${scenario.id}] failed: ${(error as Error).stack ?? String(error)}\n`);
      rows.push(failedRow(scenario, error));
    }
    log(`[${scenario.id}] done in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }
  log('');
  log(formatTable(rows));
  const notes = rows.flatMap((row) => row.notes ?? []);
  const problems = rows.flatMap((row) => row.problems ?? []);
  if (notes.length > 0) log(`\n${notes.map((note) => `- ${note}`).join('\n')}`);
  if (problems.length > 0) log(`\nProblems:\n${problems.map((problem) => `- ${problem}`).join('\n')}`);
  const failed = rows.filter((row) => row.candidate.startsWith('FAILED'));
  if (failed.length > 0 || problems.length > 0) process.exitCode = 1;
}

// Servers, pools and timers of finished scenarios may linger; the table is out, so leave.
runMain(() => main().then(() => process.exit(process.exitCode ?? 0)));
