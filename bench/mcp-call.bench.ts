/**
 * MCP `tools/call` of a trivial built-in tool (tool_echo) per second, protocol revision
 * 2026-07-28, through the gateway (POST /api/v1/mcp: bearer authentication, Host/Origin checks,
 * RBAC, the per-tool rate limit (on, not reached), schema validation, the execution row, the
 * session counters and the hash-chained audit record, on PostgreSQL) against the same tool served
 * by a bare official-SDK server: `createMcpHandler` + `McpServer.registerTool` per request, behind
 * the SDK's own Node adapter, with no authentication and nothing recorded.
 *
 * Needs PostgreSQL (TEST_PG_ADMIN_URL, default postgres://postgres@127.0.0.1:5432/postgres); a fresh
 * database is created and dropped. Load comes from autocannon in a child process; rounds alternate
 * (gateway, bare, gateway, ...) and the medians and their ratio are printed (goal >= 1.0).
 *
 *   npm run bench:mcp            (BENCH_ROUNDS, BENCH_SECONDS, BENCH_CONNECTIONS to change the run)
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createMcpHandler, fromJsonSchema, McpServer } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { Pool } from 'pg';
import { loadConfig } from '@app/core';
import { createApp } from '../apps/server/src/create-app';
import { createTestDatabase } from '../test/support/test-database';
import { log, median, post, put, runMain, urlOf } from './support/bench-util';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const WARMUP_SECONDS = 3;
const GOAL = 1.0;

const ADMIN_EMAIL = 'bench@example.com';
const ADMIN_PASSWORD = 'Bench&Pa55word!Zebra';
const VERSION = '2026-07-28';
const BODY = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: {
    name: 'tool_echo',
    arguments: { message: 'hello, bench' },
    _meta: {
      'io.modelcontextprotocol/protocolVersion': VERSION,
      'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1.0.0' },
      'io.modelcontextprotocol/clientCapabilities': {},
    },
  },
});
const MCP_HEADERS: Record<string, string> = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  'mcp-protocol-version': VERSION,
  'mcp-method': 'tools/call',
  'mcp-name': 'tool_echo',
};

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
  const config = loadConfig(
    {
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      DATA_DIR: dataDir,
      DATABASE_URL: database.url,
      HOST: '127.0.0.1',
      PORT: '0',
      JWT_SECRET: randomBytes(32).toString('hex'),
      BCRYPT_COST: '4',
      ADMIN_EMAIL,
      ADMIN_PASSWORD,
      RATE_LIMIT: '10000000',
      AUTH_RATE_LIMIT: '1000',
    },
    'bench',
  );
  const app = await createApp(config);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const appUrl = urlOf(app.getHttpServer().address() as AddressInfo);
  let bare: HttpServer | undefined;
  let pool: Pool | undefined;
  try {
    const login = await post(`${appUrl}/api/v1/auth/login`, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
    const token = login.accessToken as string;
    await put(`${appUrl}/api/v1/admin/tools/tool_echo`, token, { rateLimit: { requests: 1_000_000, window: '1h' } });

    bare = await startBareSdkServer();
    const gatewayTarget = `${appUrl}/api/v1/mcp`;
    const bareTarget = `${urlOf(bare.address() as AddressInfo)}/mcp`;
    await expectEcho(gatewayTarget, token);
    await expectEcho(bareTarget);

    log(`warm-up: ${WARMUP_SECONDS}s each`);
    await load(gatewayTarget, WARMUP_SECONDS, token);
    await load(bareTarget, WARMUP_SECONDS);

    const gatewayRounds: Round[] = [];
    const bareRounds: Round[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const g = await load(gatewayTarget, SECONDS, token);
      const b = await load(bareTarget, SECONDS);
      gatewayRounds.push(g);
      bareRounds.push(b);
      log(`round ${round}/${ROUNDS}: gateway ${g.rps.toFixed(0)} calls/s (p99 ${g.p99} ms), bare SDK ${b.rps.toFixed(0)} calls/s (p99 ${b.p99} ms), ratio ${(g.rps / b.rps).toFixed(2)}`);
    }
    const failures = [...gatewayRounds, ...bareRounds].reduce((sum, r) => sum + r.non2xx + r.errors, 0);
    const gatewayMedian = median(gatewayRounds.map((r) => r.rps));
    const bareMedian = median(bareRounds.map((r) => r.rps));
    const ratio = gatewayMedian / bareMedian;
    pool = new Pool({ connectionString: database.url, max: 1 });
    const [{ executions, audits }] = (
      await pool.query(
        `SELECT (SELECT count(*)::int FROM tool_executions) AS executions,
                (SELECT count(*)::int FROM audit_logs WHERE action = 'tool.execute') AS audits`,
      )
    ).rows;
    log('');
    log(`MCP tools/call (${VERSION}) of tool_echo per second, ${ROUNDS} rounds of ${SECONDS}s, ${CONNECTIONS} connections, PostgreSQL:`);
    log(`  through the gateway (auth, RBAC, rate limit, audit):  median ${gatewayMedian.toFixed(0)}/s`);
    log(`  bare official-SDK server (createMcpHandler):          median ${bareMedian.toFixed(0)}/s`);
    log(`  ratio gateway/bare: ${ratio.toFixed(2)} (goal >= ${GOAL}) ${ratio >= GOAL ? 'MET' : 'NOT MET'}`);
    log(`  rows written: ${executions} executions, ${audits} tool.execute audit records; non-2xx or errors: ${failures}`);
    if (failures > 0) process.exitCode = 1;
  } finally {
    await new Promise((resolve) => (bare ? bare.close(resolve) : resolve(undefined)));
    await pool?.end();
    await app.close();
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The SDK's documented way: a fresh McpServer per request, JSON Schema tools, the Node adapter. */
async function startBareSdkServer(): Promise<HttpServer> {
  const inputSchema = fromJsonSchema({
    type: 'object',
    additionalProperties: false,
    required: ['message'],
    properties: { message: { type: 'string', maxLength: 10_000 }, delayMs: { type: 'integer', minimum: 0 } },
  });
  const outputSchema = fromJsonSchema({ type: 'object', additionalProperties: false, required: ['message'], properties: { message: { type: 'string' } } });
  const handler = createMcpHandler(() => {
    const server = new McpServer({ name: 'bare', version: '1.0.0' });
    server.registerTool('tool_echo', { title: 'Echo', description: 'Returns the given message', inputSchema, outputSchema }, async (args) => {
      const result = { message: (args as { message: string }).message };
      return { content: [{ type: 'text', text: JSON.stringify(result) }], structuredContent: result };
    });
    return server;
  });
  const server = createServer(toNodeHandler(handler));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function expectEcho(url: string, token?: string): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers: { ...MCP_HEADERS, ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: BODY });
  const text = await response.text();
  if (response.status !== 200 || !text.includes('"structuredContent":{"message":"hello, bench"}')) {
    throw new Error(`${url} did not echo: ${response.status} ${text}`);
  }
}

async function load(url: string, seconds: number, token?: string): Promise<Round> {
  const headers = Object.entries({ ...MCP_HEADERS, ...(token ? { authorization: `Bearer ${token}` } : {}) }).flatMap(([name, value]) => ['--headers', `${name}=${value}`]);
  const { stdout } = await execFileAsync(
    process.execPath,
    [require.resolve('autocannon/autocannon.js'), '--json', '--connections', String(CONNECTIONS), '--duration', String(seconds), '--method', 'POST', ...headers, '--body', BODY, url],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const result = JSON.parse(stdout) as { requests: { average: number }; latency: { p99: number }; non2xx: number; errors: number };
  return { rps: result.requests.average, non2xx: result.non2xx, errors: result.errors, p99: result.latency.p99 };
}

runMain(main);
