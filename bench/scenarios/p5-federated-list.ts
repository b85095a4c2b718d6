/**
 * P5. MCP `tools/list` (2026-07-28) through the gateway with 1,000 federated tools: an upstream
 * (support/echo-upstream.cjs) exposes `echo` and 1,000 more, the gateway federates them as
 * `bench.*`, and MCP_PAGE_SIZE=1000 makes one answer carry 1,000 tools. Baseline: the very same
 * answer (bytes and content type, captured once) from a static Fastify route in this process,
 * also a POST with the same body. Goal: >= 0.8x.
 */
import Fastify, { FastifyInstance } from 'fastify';
import { urlOf } from '../support/bench-util';
import { startGateway } from '../support/gateway';
import { Closed, closedLoop, Target } from '../support/load';
import { mcpRequest } from '../support/mcp-request';
import { fmt, Row, Scenario, times } from '../support/report';
import { alternate, medianOf, pairedRatio } from '../support/rounds';
import { startUpstream, upstreamsFile, waitForTool } from '../support/upstream';

const GOAL = 0.8;
const TOOLS = 1000;

export const p5: Scenario = {
  id: 'P5',
  what: `MCP tools/list, ${TOOLS.toLocaleString('en-US')} federated tools`,
  async run(s): Promise<Row> {
    const upstream = await startUpstream(TOOLS);
    let bare: FastifyInstance | undefined;
    try {
      const gateway = await startGateway({ MCP_PAGE_SIZE: String(TOOLS) }, (dataDir) => upstreamsFile(dataDir, upstream.url));
      try {
        await waitForTool(gateway.url, gateway.token, `bench.t${String(TOOLS).padStart(4, '0')}`, 60_000);
        const candidate = mcpRequest(`${gateway.url}/api/v1/mcp`, 'tools/list', {}, gateway.token);
        const sample = await fetch(candidate.url, { method: 'POST', headers: candidate.headers, body: candidate.body });
        const answer = await sample.text();
        const contentType = sample.headers.get('content-type') ?? 'application/json';
        if (sample.status !== 200) throw new Error(`tools/list: ${sample.status} ${answer.slice(0, 300)}`);
        const listed = (answer.match(/"name":"bench\.t\d{4}"/g) ?? []).length;
        const total = (answer.match(/"inputSchema"/g) ?? []).length;
        if (listed < TOOLS * 0.9) throw new Error(`tools/list carried ${listed} bench.* tools, expected about ${TOOLS}`);

        bare = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
        bare.post('/static/mcp', async (_request, reply) => reply.header('content-type', contentType).send(answer));
        await bare.listen({ port: 0, host: '127.0.0.1' });
        const baseline: Target = { ...candidate, url: `${urlOf(bare.server.address())}/static/mcp` };

        const [gatewayRounds, bareRounds] = await alternate<Closed>(
          'P5',
          [
            { label: 'gateway', measure: (sec) => closedLoop(candidate, sec, s.connections) },
            { label: 'static', measure: (sec) => closedLoop(baseline, sec, s.connections) },
          ],
          s,
          ([g, b]) =>
            `gateway ${fmt(g.rps)} lists/s (p99 ${g.p99} ms), static ${fmt(b.rps)}/s (p99 ${b.p99} ms), ratio ${(g.rps / b.rps).toFixed(2)}`,
        );
        const failures = [...gatewayRounds, ...bareRounds].reduce((sum, r) => sum + r.non2xx + r.errors, 0);
        const ratio = pairedRatio(gatewayRounds, bareRounds, (r) => r.rps);
        return {
          id: 'P5',
          what: p5.what,
          baseline: `${fmt(medianOf(bareRounds, (r) => r.rps))}/s static Fastify route`,
          candidate: `${fmt(medianOf(gatewayRounds, (r) => r.rps))}/s`,
          ratio: times(ratio),
          goal: `≥ ${GOAL}×`,
          met: ratio >= GOAL,
          notes: [
            `P5: one answer is ${(answer.length / 1024).toFixed(0)} KB (${contentType.split(';')[0]}) with ${total} tools, ${listed} of them federated bench.t*`,
          ],
          problems: failures > 0 ? [`P5: ${failures} non-2xx answers or errors`] : [],
        };
      } finally {
        await gateway.close();
      }
    } finally {
      await bare?.close();
      upstream.stop();
    }
  },
};
