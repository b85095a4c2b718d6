/**
 * P3. MCP `tools/call` of a trivial built-in tool (tool_echo), protocol revision 2026-07-28,
 * through the gateway (POST /api/v1/mcp: bearer authentication, Host/Origin checks, RBAC, the
 * per-tool rate limit (on, not reached), schema validation, the execution row, the session
 * counters and the hash-chained audit record, on PostgreSQL) against the same tool served by a
 * bare official-SDK server: `createMcpHandler` + `McpServer.registerTool` per request, behind the
 * SDK's own Node adapter, with no authentication and nothing recorded. Goal: >= 1.0x.
 *
 * Both run in this process (one at a time under load), so the CPU per call beside each rate is
 * this process's user + system time (/proc) per answer while that side was measured.
 */
import { createServer, Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMcpHandler, fromJsonSchema, McpServer } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { Pool } from 'pg';
import { urlOf } from '../support/bench-util';
import { raiseToolLimit, startGateway } from '../support/gateway';
import { expectEcho, Metered, meteredLoop, Target } from '../support/load';
import { mcpRequest } from '../support/mcp-request';
import { cpuPerCall, fmt, Row, Scenario, times } from '../support/report';
import { alternate, medianOf, pairedRatio } from '../support/rounds';

/** Both servers answer the same structured echo. */
const ECHOED = '"structuredContent":{"message":"hello, bench"}';

const GOAL = 1.0;

export const p3: Scenario = {
  id: 'P3',
  what: 'MCP tools/call (2026-07-28), tool_echo',
  async run(s): Promise<Row> {
    const gateway = await startGateway();
    let bare: HttpServer | undefined;
    let pool: Pool | undefined;
    try {
      await raiseToolLimit(gateway.url, gateway.token, 'tool_echo');
      bare = await startBareSdkServer();
      const candidate: Target = mcpRequest(
        `${gateway.url}/api/v1/mcp`,
        'tools/call',
        { name: 'tool_echo', arguments: { message: 'hello, bench' } },
        gateway.token,
      );
      const baseline: Target = mcpRequest(`${urlOf(bare.address() as AddressInfo)}/mcp`, 'tools/call', {
        name: 'tool_echo',
        arguments: { message: 'hello, bench' },
      });
      await expectEcho(candidate, ECHOED);
      await expectEcho(baseline, ECHOED);

      const [gatewayRounds, bareRounds] = await alternate<Metered>(
        'P3',
        [
          { label: 'gateway', measure: (sec) => meteredLoop(candidate, sec, s.connections, [process.pid], { database: true }) },
          { label: 'bare SDK', measure: (sec) => meteredLoop(baseline, sec, s.connections, [process.pid]) },
        ],
        s,
        ([g, b]) =>
          `gateway ${fmt(g.rps)} calls/s (p99 ${g.p99} ms, ${fmt(g.cpuUs)} µs CPU, PostgreSQL ${fmt(g.databaseCpuUs ?? Number.NaN)} µs), bare SDK ${fmt(b.rps)} calls/s (p99 ${b.p99} ms, ${fmt(b.cpuUs)} µs CPU), ` +
          `ratio ${(g.rps / b.rps).toFixed(2)}, CPU ${(g.cpuUs / b.cpuUs).toFixed(2)}`,
      );
      const failures = [...gatewayRounds, ...bareRounds].reduce((sum, r) => sum + r.non2xx + r.errors, 0);
      pool = new Pool({ connectionString: gateway.database.url, max: 1 });
      const [{ executions, audits }] = (
        await pool.query(
          `SELECT (SELECT count(*)::int FROM tool_executions) AS executions,
                  (SELECT count(*)::int FROM audit_logs WHERE action = 'tool.execute') AS audits`,
        )
      ).rows;
      const ratio = pairedRatio(gatewayRounds, bareRounds, (r) => r.rps);
      const cpuRatio = pairedRatio(gatewayRounds, bareRounds, (r) => r.cpuUs);
      return {
        id: 'P3',
        what: p3.what,
        baseline: `${fmt(medianOf(bareRounds, (r) => r.rps))}/s, ${cpuPerCall(medianOf(bareRounds, (r) => r.cpuUs))} bare official-SDK server`,
        candidate: `${fmt(medianOf(gatewayRounds, (r) => r.rps))}/s, ${cpuPerCall(medianOf(gatewayRounds, (r) => r.cpuUs))}`,
        ratio: `${times(ratio)}; CPU/call ${times(cpuRatio)}`,
        goal: `≥ ${GOAL.toFixed(1)}× (aim 1.5×)`,
        met: ratio >= GOAL,
        notes: [
          `P3: rows written ${executions} executions, ${audits} tool.execute audit records`,
          "P3: CPU/call is this process's user + system time (/proc) per answer while that side was measured (gateway and bare SDK server both run here, one at a time under load)",
          `P3: the local PostgreSQL server's processes spent a median ${fmt(medianOf(gatewayRounds, (r) => r.databaseCpuUs ?? Number.NaN))} µs CPU per gateway call on the same cores (every postgres process here: meaningful on a quiet machine only)`,
        ],
        problems: failures > 0 ? [`P3: ${failures} non-2xx answers or errors`] : [],
      };
    } finally {
      await new Promise((done) => (bare ? bare.close(done) : done(undefined)));
      await pool?.end();
      await gateway.close();
    }
  },
};

/** The SDK's documented way: a fresh McpServer per request, JSON Schema tools, the Node adapter. */
async function startBareSdkServer(): Promise<HttpServer> {
  const inputSchema = fromJsonSchema({
    type: 'object',
    additionalProperties: false,
    required: ['message'],
    properties: { message: { type: 'string', maxLength: 10_000 }, delayMs: { type: 'integer', minimum: 0 } },
  });
  const outputSchema = fromJsonSchema({
    type: 'object',
    additionalProperties: false,
    required: ['message'],
    properties: { message: { type: 'string' } },
  });
  const handler = createMcpHandler(() => {
    const server = new McpServer({ name: 'bare', version: '1.0.0' });
    server.registerTool(
      'tool_echo',
      { title: 'Echo', description: 'Returns the given message', inputSchema, outputSchema },
      async (args) => {
        const result = { message: (args as { message: string }).message };
        return { content: [{ type: 'text', text: JSON.stringify(result) }], structuredContent: result };
      },
    );
    return server;
  });
  const server = createServer(toNodeHandler(handler));
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return server;
}
