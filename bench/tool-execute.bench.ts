/**
 * Executions per second of a trivial built-in tool (tool_echo) through the real pipeline,
 * POST /api/v1/tools/tool_echo/execute (authenticated, per-tool rate limit on but not reached,
 * audited), against a bare Fastify route in the same process doing the same work by hand:
 * verify the same JWT (fast-jwt), validate the body (ajv), write the same two rows (the
 * execution and its hash-chained audit record) with raw `pg`.
 *
 * Needs PostgreSQL (TEST_PG_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres); a
 * fresh database is created and dropped. Load comes from autocannon in a child process, so the
 * load generator does not share the servers' event loop. Rounds alternate (app, bare, app, ...)
 * so drift in the machine hits both sides alike; the medians and their ratio are printed.
 *
 *   npm run bench:tools            (BENCH_ROUNDS, BENCH_SECONDS, BENCH_CONNECTIONS to change the run)
 */
import Ajv from 'ajv';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Fastify, { FastifyInstance } from 'fastify';
import { createVerifier } from 'fast-jwt';
import { Pool } from 'pg';
import { AUDIT_CHAIN_LOCK_KEY, AUDIT_INSERT_SQL, auditInsertParams, AuditRowContent, GENESIS_HASH } from '@app/audit';
import { loadConfig, newId } from '@app/core';
import { createApp } from '../apps/server/src/create-app';
import { createTestDatabase } from '../test/support/test-database';
import { log, median, post, put, runMain, urlOf } from './support/bench-util';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const WARMUP_SECONDS = 3;
const GOAL = 0.6;

const ADMIN_EMAIL = 'bench@example.com';
const ADMIN_PASSWORD = 'Bench&Pa55word!Zebra';
/** The audit writer's chain lock (AuditService's CHAIN_LOCK_KEY): the baseline takes the same one. */
const BODY = JSON.stringify({ parameters: { message: 'hello, bench' } });

const execFileAsync = promisify(execFile);

interface Round {
  rps: number;
  non2xx: number;
  errors: number;
  p99: number;
}

async function main(): Promise<void> {
  const database = await createTestDatabase('smcp_bench');
  const dataDir = mkdtempSync(join(tmpdir(), 'smcp-bench-'));
  const jwtSecret = randomBytes(32).toString('hex');
  const config = loadConfig(
    {
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      DATA_DIR: dataDir,
      DATABASE_URL: database.url,
      HOST: '127.0.0.1',
      PORT: '0',
      JWT_SECRET: jwtSecret,
      BCRYPT_COST: '4',
      ADMIN_EMAIL,
      ADMIN_PASSWORD,
      // The general per-user limiter stays on; its budget is far above what a round sends.
      RATE_LIMIT: '10000000',
      RATE_LIMIT_WINDOW: '60',
      AUTH_RATE_LIMIT: '1000',
    },
    'bench',
  );
  let app: Awaited<ReturnType<typeof createApp>> | undefined;
  let bare: FastifyInstance | undefined;
  let pool: Pool | undefined;
  try {
    app = await createApp(config);
    await app.listen({ port: 0, host: '127.0.0.1' });
    const appUrl = urlOf(app.getHttpServer().address());
    const login = await post(`${appUrl}/api/v1/auth/login`, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
    const token = login.accessToken as string;
    // Limits on, but not reached: a budget well above what the whole run sends.
    await put(`${appUrl}/api/v1/admin/tools/tool_echo`, token, { rateLimit: { requests: 1_000_000, window: '1h' } });
    const sample = await post(`${appUrl}/api/v1/tools/tool_echo/execute`, JSON.parse(BODY), token);
    if (sample.status !== 'completed') throw new Error(`tool_echo did not complete: ${JSON.stringify(sample)}`);

    pool = new Pool({ connectionString: database.url, max: config.database.poolMax });
    bare = await startBareServer(pool, config.auth.jwtIssuer, config.auth.jwtAudience, jwtSecret);
    const bareUrl = urlOf(bare.server.address());
    const appTarget = `${appUrl}/api/v1/tools/tool_echo/execute`;
    const bareTarget = `${bareUrl}/bare/tools/tool_echo/execute`;
    const bareSample = await post(bareTarget, JSON.parse(BODY), token);
    if (bareSample.status !== 'completed') throw new Error(`bare route failed: ${JSON.stringify(bareSample)}`);

    log(`warm-up: ${WARMUP_SECONDS}s each`);
    await load(appTarget, token, WARMUP_SECONDS);
    await load(bareTarget, token, WARMUP_SECONDS);

    const appRounds: Round[] = [];
    const bareRounds: Round[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      appRounds.push(await load(appTarget, token, SECONDS));
      bareRounds.push(await load(bareTarget, token, SECONDS));
      const a = appRounds[round - 1];
      const b = bareRounds[round - 1];
      log(`round ${round}/${ROUNDS}: app ${a.rps.toFixed(0)} req/s (p99 ${a.p99} ms), bare ${b.rps.toFixed(0)} req/s (p99 ${b.p99} ms), ratio ${(a.rps / b.rps).toFixed(2)}`);
    }
    const failures = [...appRounds, ...bareRounds].reduce((sum, r) => sum + r.non2xx + r.errors, 0);
    const appMedian = median(appRounds.map((r) => r.rps));
    const bareMedian = median(bareRounds.map((r) => r.rps));
    const ratio = appMedian / bareMedian;
    // Rounds are paired (app, then bare, back to back), so each pair's ratio resists drift in the machine's load.
    const pairedRatio = median(appRounds.map((r, i) => r.rps / bareRounds[i].rps));
    const [{ executions, audits }] = (
      await pool.query(
        `SELECT (SELECT count(*)::int FROM tool_executions) AS executions,
                (SELECT count(*)::int FROM audit_logs WHERE action = 'tool.execute') AS audits`,
      )
    ).rows;
    log('');
    log(`tool_echo executions per second, ${ROUNDS} rounds of ${SECONDS}s, ${CONNECTIONS} connections, PostgreSQL:`);
    log(`  through the app (POST /api/v1/tools/tool_echo/execute): median ${appMedian.toFixed(0)}/s`);
    log(`  bare Fastify + fast-jwt + ajv + raw pg:                 median ${bareMedian.toFixed(0)}/s`);
    log(`  ratio app/bare: ${ratio.toFixed(2)} (goal >= ${GOAL}) ${ratio >= GOAL ? 'MET' : 'NOT MET'}; median of the paired rounds' ratios ${pairedRatio.toFixed(2)}`);
    log(`  rows written: ${executions} executions, ${audits} tool.execute audit records; non-2xx or errors: ${failures}`);
    if (failures > 0) process.exitCode = 1;
  } finally {
    await bare?.close();
    await pool?.end();
    await app?.close();
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The same work as the pipeline's happy path, by hand. */
async function startBareServer(pool: Pool, issuer: string, audience: string, secret: string): Promise<FastifyInstance> {
  const verify = createVerifier({ key: secret, algorithms: ['HS256'], allowedIss: issuer, allowedAud: audience });
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validateBody = ajv.compile({
    type: 'object',
    required: ['parameters'],
    additionalProperties: false,
    properties: {
      parameters: { type: 'object' },
      context: { type: 'object', properties: { sessionId: { type: 'string' }, requestId: { type: 'string' } } },
      options: { type: 'object', properties: { timeout: { type: 'integer' }, async: { type: 'boolean' } } },
    },
  });
  const validateInput = ajv.compile({
    type: 'object',
    additionalProperties: false,
    required: ['message'],
    properties: { message: { type: 'string', maxLength: 10_000 }, delayMs: { type: 'integer', minimum: 0 } },
  });
  const fastify = Fastify({ logger: false });
  fastify.post('/bare/tools/tool_echo/execute', async (request, reply) => {
    const header = request.headers.authorization ?? '';
    let claims: { sub: string; sid: string; typ: string };
    try {
      claims = verify(header.slice('Bearer '.length));
      if (claims.typ !== 'access') throw new Error('typ');
    } catch {
      return reply.status(401).send({ error: 'UNAUTHORIZED' });
    }
    const body = request.body as { parameters: { message: string } };
    if (!validateBody(body) || !validateInput(body.parameters)) return reply.status(400).send({ error: 'VALIDATION_ERROR' });
    const started = performance.now();
    const now = new Date();
    const result = { message: body.parameters.message };
    const durationMs = performance.now() - started;
    const id = newId('exe');
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO tool_executions (id, tool_id, user_id, session_id, status, async, input, result, timeout_ms, ip_address,
           user_agent, created_at, started_at, finished_at, duration_ms, attempts)
         VALUES ($1, 'tool_echo', $2, $3, 'completed', false, $4::jsonb, $5::jsonb, 30000, $6, $7, $8, $8, $8, $9, 1)`,
        [id, claims.sub, claims.sid, JSON.stringify(body.parameters), JSON.stringify(result), request.ip, request.headers['user-agent'] ?? null, now, durationMs],
      );
      await client.query(`SELECT pg_advisory_xact_lock($1)`, [AUDIT_CHAIN_LOCK_KEY]);
      const head = await client.query(`SELECT hash FROM audit_logs ORDER BY seq DESC LIMIT 1`);
      const prevHash: string = head.rows[0]?.hash ?? GENESIS_HASH;
      const content: AuditRowContent = {
        id: newId('aud'),
        timestamp: now.toISOString(),
        userId: claims.sub,
        action: 'tool.execute',
        resource: 'tool:tool_echo',
        details: { executionId: id, status: 'completed', durationMs, async: false, attempts: 1 },
        result: 'success',
        ipAddress: request.ip,
        userAgent: request.headers['user-agent'] ?? null,
        severity: 'info',
        metadata: { sessionId: claims.sid, requestId: null },
      };
      await client.query(AUDIT_INSERT_SQL, auditInsertParams(content, prevHash));
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    return { executionId: id, toolId: 'tool_echo', status: 'completed', result, metrics: { durationMs } };
  });
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  return fastify;
}

async function load(url: string, token: string, seconds: number): Promise<Round> {
  const { stdout } = await execFileAsync(
    process.execPath,
    [
      require.resolve('autocannon/autocannon.js'),
      '--json',
      '--connections', String(CONNECTIONS),
      '--duration', String(seconds),
      '--method', 'POST',
      '--headers', `authorization=Bearer ${token}`,
      '--headers', 'content-type=application/json',
      '--body', BODY,
      url,
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const result = JSON.parse(stdout) as { requests: { average: number }; latency: { p99: number }; non2xx: number; errors: number };
  return { rps: result.requests.average, non2xx: result.non2xx, errors: result.errors, p99: result.latency.p99 };
}

runMain(main);
