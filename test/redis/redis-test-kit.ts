import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { rmSync } from 'node:fs';
import { initializeLegacy, mcpEnv } from '../mcp/mcp-test-kit';
import { startTestApp, TestApp } from '../support/test-app';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A key prefix of its own per test app (pair), so suites running at once never share counters. */
export function uniquePrefix(): string {
  return `smcp-test-${randomBytes(6).toString('hex')}:`;
}

/** Secrets every replica of a deployment shares (tokens minted on one are checked on another). */
export function sharedSecrets(): Record<string, string> {
  return { JWT_SECRET: randomBytes(48).toString('base64url'), ENCRYPTION_KEY: randomBytes(48).toString('base64url') };
}

/** Deletes what a test deployment left under its prefix (keys also expire on their own). */
export async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    await redis.quit().catch(() => redis.disconnect());
  }
}

/** A 2025-era MCP session opened by hand on `t` (initialize, initialized) and its GET (SSE) stream. */
export async function openLegacyStream(
  t: Pick<TestApp, 'baseUrl'>,
  token: string,
): Promise<{ sessionId: string; reader: ReadableStreamDefaultReader<Uint8Array> }> {
  const sessionId = await initializeLegacy(`${t.baseUrl}/api/v1/mcp`, token);
  const stream = await fetch(`${t.baseUrl}/api/v1/mcp`, {
    headers: {
      accept: 'text/event-stream',
      authorization: `Bearer ${token}`,
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
    },
  });
  if (stream.status !== 200 || !stream.body) throw new Error(`GET stream: ${stream.status}`);
  return { sessionId, reader: stream.body.getReader() };
}

/** Reads an SSE body until it ends (or the time is up). */
export async function readToEnd(reader: ReadableStreamDefaultReader<Uint8Array>, timeoutMs: number): Promise<'ended' | 'still open'> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()))));
    const next = await Promise.race([reader.read().catch(() => ({ done: true as const, value: undefined })), timeout]);
    clearTimeout(timer);
    if (next === 'timeout') return 'still open';
    if (next.done) return 'ended';
  }
}

/**
 * Two replicas (A and B) of one deployment in this process: one PostgreSQL database, the same
 * secrets, Redis at `redisUrl` under `prefix`. The auth routes' budget (10 per client IP, the
 * client IP taken from X-Forwarded-For) is what the suites share or split between A and B.
 * `close` stops both and drops the database.
 */
export async function startReplicaPair(
  prefix: string,
  redisUrl = REDIS_URL,
  extraEnv: Record<string, string> = {},
): Promise<{ a: TestApp; b: TestApp; env: Record<string, string>; close(): Promise<void> }> {
  const env = mcpEnv({
    ...sharedSecrets(),
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: prefix,
    TRUST_PROXY: 'true',
    AUTH_RATE_LIMIT: '10',
    ...extraEnv,
  });
  const a = await startTestApp('postgres', { env });
  const b = await startTestApp('postgres', { env, reuse: { database: a.database, dataDir: '' } });
  return {
    a,
    b,
    env,
    close: async () => {
      await b.stop();
      await a.close();
      rmSync(b.dataDir, { recursive: true, force: true });
    },
  };
}
