import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cpuByPid, cpuSeconds, localPostgresPids } from './cpu';

/**
 * Load generators, each in a child process so they never share an event loop with the servers
 * under test: closed loop (autocannon: N connections, each sends when the previous answer came
 * back) for throughput, open loop (open-loop-load.cjs: a fixed schedule) for latency at a rate.
 */
const execFileAsync = promisify(execFile);

export interface Target {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
}

/**
 * Checks once, before a side is measured, that `target` answers a successful echo: 200, the text
 * `mustInclude`, no tool error (MCP `isError`, REST `failed`). Throws with the answer otherwise.
 */
export async function expectEcho(target: Target, mustInclude = 'hello, bench'): Promise<void> {
  const response = await fetch(target.url, { method: target.method ?? 'POST', headers: target.headers, body: target.body });
  const text = await response.text();
  if (response.status !== 200 || !text.includes(mustInclude) || text.includes('"isError":true') || text.includes('"status":"failed"')) {
    throw new Error(`${target.url} did not echo: ${response.status} ${text.slice(0, 500)}`);
  }
}

export interface Closed {
  /** Responses per second, any status (autocannon's requests.average). */
  rps: number;
  /** 2xx responses per second over the run. */
  okRps: number;
  /** Responses in all. */
  total: number;
  non2xx: number;
  errors: number;
  p50: number;
  p99: number;
}

export interface Open {
  sent: number;
  ok: number;
  failed: number;
  achievedRate: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export async function closedLoop(target: Target, seconds: number, connections: number): Promise<Closed> {
  const headers = Object.entries(target.headers ?? {}).flatMap(([name, value]) => ['--headers', `${name}=${value}`]);
  const { stdout } = await execFileAsync(
    process.execPath,
    [
      require.resolve('autocannon/autocannon.js'),
      '--json',
      '--connections',
      String(connections),
      '--duration',
      String(seconds),
      '--method',
      target.method ?? 'POST',
      ...headers,
      ...(target.body === undefined ? [] : ['--body', target.body]),
      target.url,
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const result = JSON.parse(stdout) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    non2xx: number;
    errors: number;
    '2xx': number;
    duration: number;
  };
  return {
    rps: result.requests.average,
    okRps: result['2xx'] / (result.duration || seconds),
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    p50: result.latency.p50,
    p99: result.latency.p99,
  };
}

/** A closed-loop run with the CPU the serving processes spent on it. */
export interface Metered extends Closed {
  /** CPU time (user + system) of the serving processes per response, in microseconds. */
  cpuUs: number;
  /**
   * With `database`: CPU time of the local PostgreSQL server's processes per response (every
   * process named postgres here, so only meaningful on an otherwise quiet machine; a backend that
   * ended during the run is not counted). NaN when there is no local PostgreSQL.
   */
  databaseCpuUs?: number;
}

/**
 * closedLoop, reading the CPU time of the processes that serve `target` (`pids`: the server, and
 * whatever it calls that the other side also runs, e.g. the upstream of a federated call) before
 * and after: their CPU per response is a figure that a busy neighbour disturbs far less than
 * throughput (the load generator runs in a child process and is not counted).
 */
export async function meteredLoop(
  target: Target,
  seconds: number,
  connections: number,
  pids: number[],
  options: { database?: boolean } = {},
): Promise<Metered> {
  const cpu = () => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const postgres = options.database ? localPostgresPids() : [];
  const databaseBefore = cpuByPid(postgres);
  const before = cpu();
  const result = await closedLoop(target, seconds, connections);
  const used = cpu() - before;
  const calls = Math.max(result.total, 1);
  const metered: Metered = { ...result, cpuUs: (used / calls) * 1e6 };
  if (options.database) {
    let database = 0;
    for (const [pid, after] of cpuByPid(postgres)) database += after - (databaseBefore.get(pid) ?? after);
    metered.databaseCpuUs = postgres.length > 0 ? (database / calls) * 1e6 : Number.NaN;
  }
  return metered;
}

export async function openLoop(target: Target, rate: number, seconds: number, connections = 256): Promise<Open> {
  const { stdout } = await execFileAsync(
    process.execPath,
    [
      join(__dirname, 'open-loop-load.cjs'),
      JSON.stringify({
        url: target.url,
        method: target.method ?? 'POST',
        headers: target.headers ?? {},
        body: target.body ?? '',
        rate,
        seconds,
        connections,
      }),
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return JSON.parse(stdout) as Open;
}
