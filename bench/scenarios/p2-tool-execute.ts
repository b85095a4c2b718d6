/**
 * P2. Executions per second of a trivial built-in tool (tool_echo) through the real pipeline,
 * POST /api/v1/tools/tool_echo/execute (authenticated, per-tool rate limit on but not reached,
 * audited), against a bare Fastify route in the same process doing the same work by hand:
 * verify the same JWT (fast-jwt), validate the body (ajv), write the same two rows (the
 * execution and its hash-chained audit record) with raw `pg`. Goal: >= 0.6x.
 */
import Ajv from 'ajv';
import { randomBytes } from 'node:crypto';
import Fastify, { FastifyInstance } from 'fastify';
import { createVerifier } from 'fast-jwt';
import { Pool } from 'pg';
import {
  AUDIT_CHAIN_LOCK_KEY,
  AUDIT_INSERT_LINKED_SQL,
  auditInsertRow,
  auditLinkedInsertParams,
  AuditRowContent,
  GENESIS_HASH,
} from '@app/audit';
import { newId } from '@app/core';
import { post, urlOf } from '../support/bench-util';
import { raiseToolLimit, startGateway } from '../support/gateway';
import { Closed, closedLoop, Target } from '../support/load';
import { fmt, Row, Scenario, times } from '../support/report';
import { alternate, medianOf, pairedRatio } from '../support/rounds';

const GOAL = 0.6;
/** The baseline computes the keyed MAC as the gateway does (its rows need not verify). */
const BENCH_MAC_KEY = randomBytes(32);
const BODY = JSON.stringify({ parameters: { message: 'hello, bench' } });

export const p2: Scenario = {
  id: 'P2',
  what: 'POST /tools/{id}/execute, tool_echo (audited)',
  async run(s): Promise<Row> {
    const gateway = await startGateway();
    let bare: FastifyInstance | undefined;
    let pool: Pool | undefined;
    try {
      const { url, token, config } = gateway;
      await raiseToolLimit(url, token, 'tool_echo');
      const sample = await post(`${url}/api/v1/tools/tool_echo/execute`, JSON.parse(BODY), token);
      if (sample.status !== 'completed') throw new Error(`tool_echo did not complete: ${JSON.stringify(sample)}`);

      pool = new Pool({ connectionString: gateway.database.url, max: config.database.poolMax });
      bare = await startBareServer(pool, config.auth.jwtIssuer, config.auth.jwtAudience, config.secrets.jwtSecret);
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const app: Target = { url: `${url}/api/v1/tools/tool_echo/execute`, headers, body: BODY };
      const baseline: Target = { url: `${urlOf(bare.server.address())}/bare/tools/tool_echo/execute`, headers, body: BODY };
      const bareSample = await post(baseline.url, JSON.parse(BODY), token);
      if (bareSample.status !== 'completed') throw new Error(`bare route failed: ${JSON.stringify(bareSample)}`);

      const [appRounds, bareRounds] = await alternate<Closed>(
        'P2',
        [
          { label: 'app', measure: (sec) => closedLoop(app, sec, s.connections) },
          { label: 'bare', measure: (sec) => closedLoop(baseline, sec, s.connections) },
        ],
        s,
        ([a, b]) =>
          `app ${fmt(a.rps)} req/s (p99 ${a.p99} ms), bare ${fmt(b.rps)} req/s (p99 ${b.p99} ms), ratio ${(a.rps / b.rps).toFixed(2)}`,
      );
      const failures = [...appRounds, ...bareRounds].reduce((sum, r) => sum + r.non2xx + r.errors, 0);
      const [{ executions, audits }] = (
        await pool.query(
          `SELECT (SELECT count(*)::int FROM tool_executions) AS executions,
                  (SELECT count(*)::int FROM audit_logs WHERE action = 'tool.execute') AS audits`,
        )
      ).rows;
      const ratio = pairedRatio(appRounds, bareRounds, (r) => r.rps);
      return {
        id: 'P2',
        what: p2.what,
        baseline: `${fmt(medianOf(bareRounds, (r) => r.rps))}/s bare Fastify + ajv + fast-jwt + raw pg`,
        candidate: `${fmt(medianOf(appRounds, (r) => r.rps))}/s`,
        ratio: times(ratio),
        goal: `≥ ${GOAL}×`,
        met: ratio >= GOAL,
        notes: [`P2: rows written ${executions} executions, ${audits} tool.execute audit records (both sides)`],
        problems: failures > 0 ? [`P2: ${failures} non-2xx answers or errors`] : [],
      };
    } finally {
      await bare?.close();
      await pool?.end();
      await gateway.close();
    }
  },
};

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
        [
          id,
          claims.sub,
          claims.sid,
          JSON.stringify(body.parameters),
          JSON.stringify(result),
          request.ip,
          request.headers['user-agent'] ?? null,
          now,
          durationMs,
        ],
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
      await client.query(AUDIT_INSERT_LINKED_SQL, auditLinkedInsertParams([auditInsertRow(content, prevHash, BENCH_MAC_KEY)], prevHash));
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
