import autocannon from 'autocannon';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILT_MAIN, ServerProcess, spawnServer, waitForHttp } from '../support/server-process';
import { ADMIN_EMAIL, identityEnv, PASSWORD } from '../support/identity';
import { waitFor } from '../support/polling';
import { http } from '../support/test-app';
import { createTestDatabase, TestDatabase } from '../support/test-database';

// The identity part lives in test/support/identity.ts; re-exported for the suites that import it from here.
export { ADMIN_EMAIL, PASSWORD, sessionOf } from '../support/identity';

/** The built server on its own database, with a first admin and the rate limits out of the way. */
export interface FaultServer {
  server: ServerProcess;
  database: TestDatabase;
  dataDir: string;
  /** Starts the built server again, with the same environment, database and DATA_DIR (after it died); `server` is the new one. */
  restart(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function startFaultServer(
  databaseUrl: (database: TestDatabase) => string | Promise<string>,
  env: Record<string, string>,
): Promise<FaultServer> {
  if (!existsSync(BUILT_MAIN)) throw new Error(`Build first (npm run build): ${BUILT_MAIN} is missing`);
  // Migrated already (a copy of the suites' template): these suites are about faults, not migrating.
  const database = await createTestDatabase('smcp_fault', { schema: 'migrated' });
  const dataDir = mkdtempSync(join(tmpdir(), 'smcp-fault-'));
  const serverEnv = {
    DATA_DIR: dataDir,
    DATABASE_URL: await databaseUrl(database),
    ...identityEnv({ RATE_LIMIT: '1000000', LOG_LEVEL: 'info' }),
    ...env,
  };
  const fault: FaultServer = {
    server: await spawnServer(serverEnv),
    database,
    dataDir,
    restart: async () => {
      fault.server.child.kill('SIGKILL');
      await fault.server.exited;
      fault.server = await spawnServer(serverEnv);
      await untilReady(fault.server);
    },
    cleanup: async () => {
      fault.server.child.kill('SIGKILL');
      await database.drop().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    await untilReady(fault.server);
  } catch (error) {
    await fault.cleanup();
    throw error;
  }
  return fault;
}

async function untilReady(server: ServerProcess): Promise<void> {
  try {
    await Promise.race([
      // A hang guard, wide enough for a loaded machine (45 s failed at load average 20 on 2 cores).
      waitForHttp(`${server.baseUrl}/api/v1/ready`, 120_000),
      server.exited.then((code) => Promise.reject(new Error(`server exited with ${code}`))),
    ]);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${server.stderr()}`);
  }
}

export async function loginAdmin(baseUrl: string): Promise<string> {
  const res = await http(baseUrl, 'POST', '/api/v1/auth/login', { body: { email: ADMIN_EMAIL, password: PASSWORD } });
  if (res.status !== 200) throw new Error(`login: ${res.status} ${res.text}`);
  return res.body.accessToken;
}

/** Lifts tool_echo's per-user budget (600 a minute by default) out of the load's way. */
export async function unlimitEcho(baseUrl: string, adminToken: string): Promise<void> {
  const res = await http(baseUrl, 'PUT', '/api/v1/admin/tools/tool_echo', {
    token: adminToken,
    body: { rateLimit: { requests: 1_000_000, window: '1m' } },
  });
  if (res.status !== 200) throw new Error(`unlimit tool_echo: ${res.status} ${res.text}`);
}

export interface Outcome {
  kind: string;
  status: number;
  body: string;
  /** Milliseconds from writing the request to the end of the response. */
  durationMs: number;
  /** Wall-clock time the response completed. */
  at: number;
}

export interface LoadRequest {
  kind: string;
  method: 'GET' | 'POST';
  path: string;
  /** A fresh body per request (autocannon's setupRequest). */
  body?: () => unknown;
}

export interface LoadRun {
  outcomes: Outcome[];
  /**
   * Failed connection attempts by code (ECONNREFUSED once the listener closed, …). autocannon
   * reconnects at once, so these count attempts, not requests.
   */
  socketErrors: Record<string, number>;
  /** Requests that got no answer within the load's timeout (a hang). */
  timeouts(): number;
  stop(): Promise<void>;
}

/**
 * Keeps `connections` keep-alive connections busy with the given requests, round robin, until
 * stopped (at `rate` per second overall, when given). Every answer is recorded with its kind,
 * status, body and duration.
 */
export function startLoad(
  baseUrl: string,
  token: string,
  requests: LoadRequest[],
  options: {
    connections: number;
    timeoutSec?: number;
    /** requests per second over all connections; unset: as fast as answered */ rate?: number;
  },
): LoadRun {
  const outcomes: Outcome[] = [];
  const socketErrors: Record<string, number> = {};
  let timeouts = 0;
  let finished: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finished = resolve));
  const instance = autocannon(
    {
      url: baseUrl,
      connections: options.connections,
      duration: 120,
      timeout: options.timeoutSec ?? 30,
      ...(options.rate ? { overallRate: options.rate } : {}),
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      requests: requests.map((request) => ({
        method: request.method,
        path: request.path,
        ...(request.body ? { setupRequest: (req: Record<string, unknown>) => ({ ...req, body: JSON.stringify(request.body!()) }) } : {}),
        onResponse: (status: number, body: string) => {
          outcomes.push({ kind: request.kind, status, body, durationMs: -1, at: Date.now() });
        },
      })),
      setupClient: (client: { on(event: string, listener: (...args: unknown[]) => void): void }) => {
        client.on('timeout', () => timeouts++);
        // Emitted right after onResponse for the same request: attach its duration.
        client.on('response', (_status: unknown, _bytes: unknown, durationMs: unknown) => {
          const last = outcomes[outcomes.length - 1];
          if (last && last.durationMs === -1) last.durationMs = Number(durationMs);
        });
        client.on('connError', (error: unknown) => {
          const code = (error as NodeJS.ErrnoException).code ?? 'unknown';
          socketErrors[code] = (socketErrors[code] ?? 0) + 1;
        });
      },
    } as autocannon.Options,
    () => finished(),
  );
  return {
    outcomes,
    socketErrors,
    timeouts: () => timeouts,
    stop: async () => {
      instance.stop();
      await done;
    },
  };
}

export function count<T>(items: T[], key: (item: T) => string | number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 100 ms until it holds (returns when, Date.now(), for the printed figures) or `timeoutMs` passed (throws). */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  await waitFor('the condition', check, timeoutMs, 100);
  return Date.now();
}

/** The server's exit code, or 'still running' if it has not exited within `ms`. */
export async function exitWithin(server: ServerProcess, ms: number): Promise<number | string> {
  let overdue: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      server.exited,
      new Promise<string>((resolve) => (overdue = setTimeout(() => resolve('still running'), ms))),
    ]);
  } finally {
    clearTimeout(overdue);
  }
}
