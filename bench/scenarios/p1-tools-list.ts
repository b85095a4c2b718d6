/**
 * P1. GET /api/v1/tools, authenticated, with everything a production request goes through:
 * authentication and permission guards, the throttler (limits raised so it never answers 429,
 * but it counts), metrics and the request log (LOG_LEVEL=info, one line per request, written to
 * /dev/null). The server runs from source as a process of its own (so its log stays out of this
 * output). Baseline: a bare Fastify route in this process that verifies the same token with
 * fast-jwt and returns the same JSON. Goal: >= 0.75x requests/s, p99 <= 1.5x.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { FastifyInstance } from 'fastify';
import { createVerifier } from 'fast-jwt';
import { loadConfig } from '@app/core';
import { createTestDatabase } from '../../test/support/test-database';
import { startBenchIdp } from '../support/bench-idp';
import { urlOf } from '../support/bench-util';
import { benchEnv, loginAdmin, spawnServer, waitReady } from '../support/gateway';
import { Closed, closedLoop, Target } from '../support/load';
import { fmt, Row, Scenario, times } from '../support/report';
import { alternate, medianOf, pairedRatio } from '../support/rounds';
import type { BenchSettings } from '../support/settings';

const RPS_GOAL = 0.75;
const P99_GOAL = 1.5;

export const p1: Scenario = {
  id: 'P1',
  what: 'GET /tools, authenticated (guards, throttler, metrics, request log)',
  run: (s) => toolsListRow(s, p1, 'own'),
};

/**
 * P1 with an enterprise IdP's access token (RS256, verified against the IdP's JWKS by jose, the
 * identity resolved from its issuer and subject) instead of our own HS256 token; same baseline and goal.
 */
export const p1Idp: Scenario = {
  id: 'P1-IDP',
  what: 'GET /tools with an IdP-issued token (JWKS-verified)',
  run: (s) => toolsListRow(s, p1Idp, 'idp'),
};

async function toolsListRow(s: BenchSettings, scenario: Scenario, credential: 'own' | 'idp'): Promise<Row> {
  const { id } = scenario;
  const database = await createTestDatabase('smcp_bench');
  const dataDir = mkdtempSync(join(tmpdir(), 'smcp-bench-'));
  const idp = credential === 'idp' ? await startBenchIdp() : undefined;
  const env = benchEnv(database, dataDir, { LOG_LEVEL: 'info', ...idp?.env });
  const server = await spawnServer('source', env);
  let bare: FastifyInstance | undefined;
  try {
    await waitReady(server, 120_000, 100);
    const own = await loginAdmin(server.url);
    const token = idp ? await idp.token('bench-admin', 'bench-admin@idp.example') : own;
    const path = '/api/v1/tools';
    const headers = { authorization: `Bearer ${token}` };
    const sample = await fetch(`${server.url}${path}`, { headers });
    const json = await sample.text();
    if (sample.status !== 200) throw new Error(`GET ${path}: ${sample.status} ${json.slice(0, 300)}`);
    const config = loadConfig(env, 'bench');
    bare = await startBareServer(
      json,
      sample.headers.get('content-type') ?? 'application/json; charset=utf-8',
      config.auth.jwtIssuer,
      config.auth.jwtAudience,
      config.secrets.jwtSecret,
    );
    const candidate: Target = { url: `${server.url}${path}`, method: 'GET', headers };
    // The baseline verifies our own token (fast-jwt, HS256) whichever token the gateway is sent.
    const ownHeaders = { authorization: `Bearer ${own}` };
    const baseline: Target = { url: `${urlOf(bare.server.address())}${path}`, method: 'GET', headers: ownHeaders };
    const bareSample = await fetch(baseline.url, { headers: ownHeaders });
    if (bareSample.status !== 200 || (await bareSample.text()) !== json) throw new Error('the bare route does not answer the same JSON');

    const [appRounds, bareRounds] = await alternate<Closed>(
      id,
      [
        { label: 'app', measure: (sec) => closedLoop(candidate, sec, s.connections) },
        { label: 'bare', measure: (sec) => closedLoop(baseline, sec, s.connections) },
      ],
      s,
      ([a, b]) =>
        `app ${fmt(a.rps)} req/s (p99 ${a.p99} ms), bare ${fmt(b.rps)} req/s (p99 ${b.p99} ms), ratio ${(a.rps / b.rps).toFixed(2)}`,
    );
    const failures = [...appRounds, ...bareRounds].reduce((sum, r) => sum + r.non2xx + r.errors, 0);
    const ratio = pairedRatio(appRounds, bareRounds, (r) => r.rps);
    const appP99 = medianOf(appRounds, (r) => r.p99);
    const bareP99 = medianOf(bareRounds, (r) => r.p99);
    // autocannon reports whole milliseconds: a 0 ms p99 counts as 1 ms so the ratio stays defined.
    const p99Ratio = Math.max(appP99, 1) / Math.max(bareP99, 1);
    return {
      id,
      what: scenario.what,
      baseline: `${fmt(medianOf(bareRounds, (r) => r.rps))} req/s, p99 ${bareP99} ms (Fastify + fast-jwt)`,
      candidate: `${fmt(medianOf(appRounds, (r) => r.rps))} req/s, p99 ${appP99} ms`,
      ratio: `${times(ratio)}; p99 ${times(p99Ratio)}`,
      goal: `≥ ${RPS_GOAL}×; p99 ≤ ${P99_GOAL}×`,
      met: ratio >= RPS_GOAL && p99Ratio <= P99_GOAL,
      notes: [
        `${id}: ${json.length} bytes of JSON per answer; the server runs from source (ts-node, transpile only) with its log at info to /dev/null` +
          (idp ? '; the token is an RS256 JWT of a loopback IdP, verified against its JWKS (jose)' : ''),
      ],
      problems: failures > 0 ? [`${id}: ${failures} non-2xx answers or errors`] : [],
    };
  } finally {
    await bare?.close();
    await server.stop();
    await idp?.close();
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The baseline at its fastest: the token checked with fast-jwt, then the answer's bytes as
 * captured (serialised once, like the gateway's cached listing), not serialised per request.
 */
async function startBareServer(
  json: string,
  contentType: string,
  issuer: string,
  audience: string,
  secret: string,
): Promise<FastifyInstance> {
  const verify = createVerifier({ key: secret, algorithms: ['HS256'], allowedIss: issuer, allowedAud: audience });
  const fastify = Fastify({ logger: false });
  fastify.get('/api/v1/tools', async (request, reply) => {
    try {
      const claims = verify((request.headers.authorization ?? '').slice('Bearer '.length)) as { typ?: string };
      if (claims.typ !== 'access') throw new Error('typ');
    } catch {
      return reply.status(401).send({ error: 'UNAUTHORIZED' });
    }
    return reply.type(contentType).send(json);
  });
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  return fastify;
}
