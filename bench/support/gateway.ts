import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppConfig, loadConfig } from '@app/core';
import { createApp } from '../../apps/server/src/create-app';
import { createTestDatabase, TestDatabase } from '../../test/support/test-database';
import { freePort } from '../../test/support/server-process';
import { post, put, urlOf } from './bench-util';

/** Starting the gateway for a scenario: in this process (from source) or as a process of its own. */

export const ADMIN_EMAIL = 'bench@example.com';
export const ADMIN_PASSWORD = 'Bench&Pa55word!Zebra';
export const REPO_ROOT = resolve(__dirname, '..', '..');

/**
 * What every benchmark server runs with: a fresh database and data dir, a known JWT secret (the
 * baselines verify the same tokens), a first admin, and the general rate limits on but far above
 * what a run sends (so they cost what they cost, and never answer 429).
 */
export function benchEnv(database: TestDatabase | undefined, dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    DATA_DIR: dataDir,
    ...(database ? { DATABASE_URL: database.url } : {}),
    HOST: '127.0.0.1',
    JWT_SECRET: randomBytes(32).toString('hex'),
    ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    BCRYPT_COST: '4',
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    RATE_LIMIT: '10000000',
    RATE_LIMIT_WINDOW: '60',
    AUTH_RATE_LIMIT: '100000',
    ...extra,
  };
}

export interface Gateway {
  url: string;
  config: AppConfig;
  database: TestDatabase;
  dataDir: string;
  /** The first admin's access token. */
  token: string;
  /** The Nest application (in this process), for harnesses that reach a service directly. */
  app: NestFastifyApplication;
  close(): Promise<void>;
}

/** The gateway in this process, from source, on a fresh PostgreSQL database (as bench:tools/bench:mcp always did). */
export async function startGateway(
  extra: Record<string, string> = {},
  prepare?: (dataDir: string) => Record<string, string>,
): Promise<Gateway> {
  const database = await createTestDatabase('smcp_bench');
  const dataDir = mkdtempSync(join(tmpdir(), 'smcp-bench-'));
  let app: NestFastifyApplication | undefined;
  const close = async () => {
    await app?.close();
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const env = benchEnv(database, dataDir, { PORT: '0', ...extra, ...(prepare ? prepare(dataDir) : {}) });
    const config = loadConfig(env, 'bench');
    app = await createApp(config);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = urlOf(app.getHttpServer().address() as AddressInfo);
    const token = await loginAdmin(url);
    return { url, config, database, dataDir, token, app, close };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}

export async function loginAdmin(url: string): Promise<string> {
  const login = await post(`${url}/api/v1/auth/login`, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
  return login.accessToken as string;
}

/** Per-tool limits on, but not reached: a budget well above what a whole run sends. */
export async function raiseToolLimit(url: string, token: string, toolId: string): Promise<void> {
  await put(`${url}/api/v1/admin/tools/${toolId}`, token, { rateLimit: { requests: 1_000_000, window: '1h' } });
}

/** Where the built server is: BENCH_SERVER_DIST, else TEST_SERVER_DIST (a private build), else dist/. */
export function builtMain(): string {
  const dist = process.env.BENCH_SERVER_DIST ?? process.env.TEST_SERVER_DIST ?? join(REPO_ROOT, 'dist');
  const main = join(resolve(dist), 'apps', 'server', 'src', 'main.js');
  if (!existsSync(main)) throw new Error(`no built server at ${main}: run \`npm run build\` (or point BENCH_SERVER_DIST at a build)`);
  return main;
}

export interface ServerProcess {
  child: ChildProcess;
  pid: number;
  url: string;
  /** The last few KB of its stderr. */
  stderr(): string;
  /** The last few KB of its log (stdout), when spawned with `log: 'tail'`. */
  log(): string;
  exited: Promise<number | string>;
  /** SIGTERM (a graceful shutdown, SIGKILL after 15 s) or, when the state no longer matters, SIGKILL. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
}

/**
 * The server as a process of its own: `dist` runs the build exactly as `npm run start:prod` does;
 * `source` runs apps/server/src/main.ts through ts-node (transpile only), for scenarios that need
 * the current code in a separate process. Its log goes to /dev/null (so request logging can stay
 * on without flooding the bench output) or, with `log: 'tail'`, its last lines are kept for
 * diagnosis. The open-files limit is raised to the hard limit.
 */
export async function spawnServer(
  kind: 'dist' | 'source',
  env: Record<string, string>,
  options: { log?: 'ignore' | 'tail'; root?: string; preload?: string[] } = {},
): Promise<ServerProcess> {
  const port = Number(env.PORT ?? (await freePort()));
  // `root`: another checkout's source (its own node_modules and tsconfig), e.g. main's for an A/B.
  const root = options.root ?? REPO_ROOT;
  const args =
    kind === 'dist'
      ? [builtMain()]
      : [
          '-r',
          'ts-node/register',
          '-r',
          'tsconfig-paths/register',
          // `preload`: bench-only modules loaded before main.ts (P1B's switches).
          ...(options.preload ?? []).flatMap((file) => ['-r', file]),
          join(root, 'apps', 'server', 'src', 'main.ts'),
        ];
  const child = spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', 'sh', process.execPath, ...args], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      ...(kind === 'source' ? { TS_NODE_TRANSPILE_ONLY: 'true' } : {}),
      ...env,
      PORT: String(port),
    },
    stdio: ['ignore', options.log === 'tail' ? 'pipe' : 'ignore', 'pipe'],
  });
  let err = '';
  let out = '';
  child.stderr!.on('data', (chunk) => (err = (err + String(chunk)).slice(-8192)));
  child.stdout?.on('data', (chunk) => (out = (out + String(chunk)).slice(-16384)));
  const exited = new Promise<number | string>((done) => child.once('exit', (code, signal) => done(code ?? signal ?? 'unknown')));
  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  return { child, pid: child.pid!, url: `http://127.0.0.1:${port}`, stderr: () => err, log: () => out, exited, stop };
}

/** Polls GET {url}/api/v1/ready until it answers 200; resolves with the moment it did (performance.now()). */
export async function waitReady(server: ServerProcess, timeoutMs = 60_000, intervalMs = 10): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void server.exited.then(() => (gone = true));
  while (Date.now() < deadline && !gone) {
    try {
      const response = await fetch(`${server.url}/api/v1/ready`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return performance.now();
    } catch {
      // not listening yet
    }
    await new Promise((done) => setTimeout(done, intervalMs));
  }
  throw new Error(`the server was not ready within ${timeoutMs} ms${gone ? ' (it exited)' : ''}: ${server.stderr().slice(-500)}`);
}

/** Resident set size of a process in KB (VmRSS in /proc/<pid>/status). */
export function rssKb(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]);
}
