/**
 * How long and how hard the benchmarks run, from the environment. BENCH_SMOKE=1 shrinks every
 * scenario to a second or two (one round, no warm-up, 50 WebSocket sessions, a 2 s soak): the
 * smoke suite (test/bench) uses it to check that each scenario still runs and prints numbers.
 */
export interface BenchSettings {
  smoke: boolean;
  /** Alternating rounds per side. */
  rounds: number;
  /** Seconds of load per side and round. */
  seconds: number;
  /** Seconds of load per side before the first round (0: none). */
  warmupSeconds: number;
  /** Concurrent connections of the closed-loop load (autocannon). */
  connections: number;
  /**
   * P4: the steady open-loop rate (BENCH_RATE; unset: half the direct path's saturation rate
   * measured in the same run) and its rounds; the low reference rate.
   */
  steadyRate: number | null;
  steadySeconds: number;
  steadyRounds: number;
  lowRate: number;
  lowSeconds: number;
  /** P6: concurrent logins of the storm; the steady rate of the reads beside it. */
  loginConnections: number;
  readRate: number;
  /** P7: idle WebSocket sessions to hold, seconds they stay idle, soak seconds and its traffic. */
  wsSessions: number;
  idleSeconds: number;
  soakSeconds: number;
  soakRate: number;
  /** P8: cold starts per configuration. */
  coldStarts: number;
}

function num(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number (got "${raw}")`);
  return value;
}

export function benchSettings(): BenchSettings {
  const smoke = ['1', 'true', 'yes'].includes((process.env.BENCH_SMOKE ?? '').toLowerCase());
  return {
    smoke,
    rounds: Math.max(1, num('BENCH_ROUNDS', smoke ? 1 : 5)),
    seconds: Math.max(1, num('BENCH_SECONDS', smoke ? 1 : 5)),
    warmupSeconds: num('BENCH_WARMUP_S', smoke ? 0 : 3),
    connections: Math.max(1, num('BENCH_CONNECTIONS', 10)),
    steadyRate: process.env.BENCH_RATE?.trim() ? Math.max(1, num('BENCH_RATE', 1)) : null,
    steadySeconds: Math.max(1, num('BENCH_STEADY_SECONDS', smoke ? 1 : 10)),
    steadyRounds: Math.max(1, num('BENCH_STEADY_ROUNDS', smoke ? 1 : 3)),
    lowRate: Math.max(1, num('BENCH_LOW_RATE', 100)),
    lowSeconds: Math.max(1, num('BENCH_LOW_SECONDS', smoke ? 1 : 5)),
    loginConnections: Math.max(1, num('BENCH_LOGIN_CONNECTIONS', 8)),
    readRate: Math.max(1, num('BENCH_READ_RATE', 50)),
    wsSessions: Math.max(1, num('BENCH_WS_SESSIONS', smoke ? 50 : 10_000)),
    idleSeconds: num('BENCH_IDLE_S', smoke ? 1 : 15),
    soakSeconds: Math.max(1, num('BENCH_SOAK_S', smoke ? 2 : 600)),
    soakRate: Math.max(1, num('BENCH_SOAK_RATE', 20)),
    coldStarts: Math.max(1, num('BENCH_COLD_STARTS', smoke ? 1 : 3)),
  };
}
