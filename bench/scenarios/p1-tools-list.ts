/**
 * P1. GET /api/v1/tools, authenticated, with everything a production request goes through:
 * authentication and permission guards, the throttler (limits raised so it never answers 429,
 * but it counts), metrics and the request log (LOG_LEVEL=info, one line per request, written to
 * /dev/null). The server runs from source as a process of its own (so its log stays out of this
 * output). Baseline: a bare Fastify route in this process that verifies the same token with
 * fast-jwt and returns the same JSON. Goal: >= 0.75x requests/s, p99 <= 1.5x.
 *
 * Beside every throughput figure, the CPU time the serving process spent per request (user +
 * system from /proc). P1 also measures, in the same alternation, a reference row P1-NEST: the bare
 * route again, but on Nest-on-Fastify (a controller behind a guard that runs the same fast-jwt
 * check), so the framework's own share of the gap is visible.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CanActivate, Controller, ExecutionContext, Get, INestApplication, Module, Res, UseGuards } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import Fastify, { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createVerifier } from 'fast-jwt';
import { loadConfig } from '@app/core';
import { createTestDatabase } from '../../test/support/test-database';
import { startBenchIdp } from '../support/bench-idp';
import { urlOf } from '../support/bench-util';
import { benchEnv, loginAdmin, spawnServer, waitReady } from '../support/gateway';
import { Metered, meteredLoop, Target } from '../support/load';
import { cpuPerCall, fmt, Row, Scenario, times } from '../support/report';
import { alternate, medianOf, pairedRatio } from '../support/rounds';
import type { BenchSettings } from '../support/settings';

const RPS_GOAL = 0.75;
const P99_GOAL = 1.5;

export const p1: Scenario = {
  id: 'P1',
  what: 'GET /tools, authenticated (guards, throttler, metrics, request log)',
  run: (s) => toolsListRow(s, p1, 'own'),
};

/** The reference row P1 adds: a bare Nest-on-Fastify route, same check, same bytes. */
export const P1_NEST = { id: 'P1-NEST', what: 'reference: the bare route on Nest-on-Fastify (fast-jwt guard, same bytes)' };

/**
 * P1 with an enterprise IdP's access token (RS256, verified against the IdP's JWKS by jose, the
 * identity resolved from its issuer and subject) instead of our own HS256 token; same baseline and goal.
 */
export const p1Idp: Scenario = {
  id: 'P1-IDP',
  what: 'GET /tools with an IdP-issued token (JWKS-verified)',
  run: (s) => toolsListRow(s, p1Idp, 'idp'),
};

async function toolsListRow(s: BenchSettings, scenario: Scenario, credential: 'own' | 'idp'): Promise<Row[]> {
  const { id } = scenario;
  const database = await createTestDatabase('smcp_bench');
  const dataDir = mkdtempSync(join(tmpdir(), 'smcp-bench-'));
  const idp = credential === 'idp' ? await startBenchIdp() : undefined;
  const env = benchEnv(database, dataDir, { LOG_LEVEL: 'info', ...idp?.env });
  const server = await spawnServer('source', env);
  let bare: FastifyInstance | undefined;
  let nest: INestApplication | undefined;
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
    const contentType = sample.headers.get('content-type') ?? 'application/json; charset=utf-8';
    const check = fastJwtCheck(config.auth.jwtIssuer, config.auth.jwtAudience, config.secrets.jwtSecret);
    bare = await startBareServer(json, contentType, check);
    const candidate: Target = { url: `${server.url}${path}`, method: 'GET', headers };
    // The baseline verifies our own token (fast-jwt, HS256) whichever token the gateway is sent.
    const ownHeaders = { authorization: `Bearer ${own}` };
    const baseline: Target = { url: `${urlOf(bare.server.address())}${path}`, method: 'GET', headers: ownHeaders };
    await expectSame(baseline, json, 'the bare route');
    // The framework's own share: only beside our own token (P1), not repeated for P1-IDP.
    let reference: Target | undefined;
    if (!idp) {
      nest = await startBareNestServer(json, contentType, check);
      reference = {
        url: `${urlOf((nest as NestFastifyApplication).getHttpServer().address())}${path}`,
        method: 'GET',
        headers: ownHeaders,
      };
      await expectSame(reference, json, 'the bare Nest route');
    }

    // CPU per request: the gateway's process for the candidate; this process (which serves both
    // bare routes and nothing else while they are measured) for the baseline and the reference.
    const run = (target: Target, pid: number) => (sec: number) => meteredLoop(target, sec, s.connections, [pid]);
    const [appRounds, bareRounds, nestRounds = []] = await alternate<Metered>(
      id,
      [
        { label: 'app', measure: run(candidate, server.pid) },
        { label: 'bare', measure: run(baseline, process.pid) },
        ...(reference ? [{ label: 'bare Nest', measure: run(reference, process.pid) }] : []),
      ],
      s,
      ([a, b, n]) =>
        `app ${fmt(a.rps)} req/s (p99 ${a.p99} ms, ${fmt(a.cpuUs)} µs CPU), bare ${fmt(b.rps)} req/s (p99 ${b.p99} ms, ${fmt(b.cpuUs)} µs CPU), ` +
        `ratio ${(a.rps / b.rps).toFixed(2)}, CPU ${(a.cpuUs / b.cpuUs).toFixed(2)}` +
        (n ? `; bare Nest ${fmt(n.rps)} req/s (${fmt(n.cpuUs)} µs CPU), ratio ${(n.rps / b.rps).toFixed(2)}` : ''),
    );
    const failures = [...appRounds, ...bareRounds, ...nestRounds].reduce((sum, r) => sum + r.non2xx + r.errors, 0);
    const ratio = pairedRatio(appRounds, bareRounds, (r) => r.rps);
    const cpuRatio = pairedRatio(appRounds, bareRounds, (r) => r.cpuUs);
    const appP99 = medianOf(appRounds, (r) => r.p99);
    const bareP99 = medianOf(bareRounds, (r) => r.p99);
    // autocannon reports whole milliseconds: a 0 ms p99 counts as 1 ms so the ratio stays defined.
    const p99Ratio = Math.max(appP99, 1) / Math.max(bareP99, 1);
    const bareCell = `${fmt(medianOf(bareRounds, (r) => r.rps))} req/s, p99 ${bareP99} ms, ${cpuPerCall(medianOf(bareRounds, (r) => r.cpuUs))} (Fastify + fast-jwt)`;
    const rows: Row[] = [
      {
        id,
        what: scenario.what,
        baseline: bareCell,
        candidate: `${fmt(medianOf(appRounds, (r) => r.rps))} req/s, p99 ${appP99} ms, ${cpuPerCall(medianOf(appRounds, (r) => r.cpuUs))}`,
        ratio: `${times(ratio)}; p99 ${times(p99Ratio)}; CPU/call ${times(cpuRatio)}`,
        goal: `≥ ${RPS_GOAL}×; p99 ≤ ${P99_GOAL}×`,
        met: ratio >= RPS_GOAL && p99Ratio <= P99_GOAL,
        notes: [
          `${id}: ${json.length} bytes of JSON per answer; the server runs from source (ts-node, transpile only) with its log at info to /dev/null` +
            (idp ? '; the token is an RS256 JWT of a loopback IdP, verified against its JWKS (jose)' : '') +
            "; CPU/call is the serving process's user + system time (/proc) per answer, candidate over baseline",
        ],
        problems: failures > 0 ? [`${id}: ${failures} non-2xx answers or errors`] : [],
      },
    ];
    if (reference) {
      const nestP99 = medianOf(nestRounds, (r) => r.p99);
      rows.push({
        ...P1_NEST,
        baseline: bareCell,
        candidate: `${fmt(medianOf(nestRounds, (r) => r.rps))} req/s, p99 ${nestP99} ms, ${cpuPerCall(medianOf(nestRounds, (r) => r.cpuUs))}`,
        ratio: `${times(pairedRatio(nestRounds, bareRounds, (r) => r.rps))}; p99 ${times(Math.max(nestP99, 1) / Math.max(bareP99, 1))}; CPU/call ${times(pairedRatio(nestRounds, bareRounds, (r) => r.cpuUs))}`,
        goal: '– (reference: what Nest itself costs)',
        met: undefined,
        notes: [
          `${P1_NEST.id}: the bare route as a Nest controller (FastifyAdapter, a global prefix-free route, a guard doing the same fast-jwt check); ` +
            `the gateway's share of the P1 gap beyond it is its own pipeline (authentication, throttler, metrics, request log, headers)`,
        ],
      });
    }
    return rows;
  } finally {
    await bare?.close();
    await nest?.close();
    await server.stop();
    await idp?.close();
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

type Check = (authorization: string | undefined) => boolean;

/** Our access token checked with fast-jwt (HS256, issuer, audience, `typ: access`): what both bare routes run. */
function fastJwtCheck(issuer: string, audience: string, secret: string): Check {
  const verify = createVerifier({ key: secret, algorithms: ['HS256'], allowedIss: issuer, allowedAud: audience });
  return (authorization) => {
    try {
      const claims = verify((authorization ?? '').slice('Bearer '.length)) as { typ?: string };
      return claims.typ === 'access';
    } catch {
      return false;
    }
  };
}

async function expectSame(target: Target, json: string, what: string): Promise<void> {
  const response = await fetch(target.url, { headers: target.headers });
  if (response.status !== 200 || (await response.text()) !== json) throw new Error(`${what} does not answer the same JSON`);
}

/**
 * The baseline at its fastest: the token checked with fast-jwt, then the answer's bytes as
 * captured (serialised once, like the gateway's cached listing), not serialised per request.
 */
async function startBareServer(json: string, contentType: string, check: Check): Promise<FastifyInstance> {
  const fastify = Fastify({ logger: false });
  fastify.get('/api/v1/tools', async (request, reply) => {
    if (!check(request.headers.authorization)) return reply.status(401).send({ error: 'UNAUTHORIZED' });
    return reply.type(contentType).send(json);
  });
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  return fastify;
}

/**
 * The same route the Nest way: a controller on the Fastify adapter behind a guard that runs the
 * same check, answering the same bytes. No logger, no pipes, no filters of ours: Nest's router,
 * guard and handler machinery only.
 */
async function startBareNestServer(json: string, contentType: string, check: Check): Promise<INestApplication> {
  class FastJwtGuard implements CanActivate {
    canActivate(context: ExecutionContext): boolean {
      return check(context.switchToHttp().getRequest<FastifyRequest>().headers.authorization);
    }
  }
  @Controller('api/v1/tools')
  class ToolsController {
    @Get()
    @UseGuards(new FastJwtGuard())
    list(@Res({ passthrough: true }) reply: FastifyReply): string {
      void reply.type(contentType);
      return json;
    }
  }
  @Module({ controllers: [ToolsController] })
  class BareModule {}
  const app = await NestFactory.create<NestFastifyApplication>(BareModule, new FastifyAdapter({ logger: false }), { logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return app;
}
