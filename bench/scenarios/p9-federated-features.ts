/**
 * P9. A federated MCP `prompts/get` and `resources/read` against asking the same upstream directly.
 *
 * The upstream is P4's (support/echo-upstream.cjs: an official-SDK server in a process of its
 * own), which also offers the prompt `greeting` and the 1 KB text resource `bench://doc`.
 * "Direct" posts 2026-07-28 `prompts/get` / `resources/read` requests to it. "Federated" posts
 * the same for `bench.greeting` / `mcp-upstream://bench/bench://doc` to the gateway (POST
 * /api/v1/mcp: bearer authentication, permissions, the upstream's per-user rate limit on but not
 * reached, a hash-chained `prompt.get` / `resource.read` audit record on PostgreSQL per request),
 * which forwards them over its UpstreamToolProvider's connection (v2 client, Streamable HTTP).
 * The four sides alternate in the same rounds; each ratio pairs a federated round with the direct
 * round beside it. Goal: federated/direct >= 0.5x for each.
 */
import { Pool } from 'pg';
import { Closed, closedLoop, Target } from '../support/load';
import { mcpRequest } from '../support/mcp-request';
import { fmt, Row, Scenario, times } from '../support/report';
import { alternate, medianOf, pairedRatio } from '../support/rounds';
import { withFederatedGateway } from '../support/upstream';

const RATIO_GOAL = 0.5;
const PROMPT = { name: 'greeting', arguments: { name: 'bench' } };
const DOC_URI = 'bench://doc';
/** How the gateway names the upstream `bench`'s resource (libs/tools/src/upstream/federated-names.ts). */
const FEDERATED_DOC_URI = `mcp-upstream://bench/${DOC_URI}`;

export const p9: Scenario = {
  id: 'P9',
  what: 'federated MCP prompts/get and resources/read',
  run: (s) =>
    withFederatedGateway(async (gateway, upstream) => {
      const { url: appUrl, token } = gateway;
      const endpoint = `${appUrl}/api/v1/mcp`;
      const directGet = mcpRequest(upstream.url, 'prompts/get', PROMPT);
      const federatedGet = mcpRequest(endpoint, 'prompts/get', { ...PROMPT, name: `bench.${PROMPT.name}` }, token);
      const directRead = mcpRequest(upstream.url, 'resources/read', { uri: DOC_URI });
      const federatedRead = mcpRequest(endpoint, 'resources/read', { uri: FEDERATED_DOC_URI }, token);
      await expectAnswer(directGet, 'Say hello to bench');
      await expectAnswer(federatedGet, 'Say hello to bench');
      await expectAnswer(directRead, 'The quick brown fox');
      await expectAnswer(federatedRead, FEDERATED_DOC_URI);

      const saturate = (target: Target) => (sec: number) => closedLoop(target, sec, s.connections);
      const [dGet, fGet, dRead, fRead] = await alternate<Closed>(
        'P9',
        [
          { label: 'direct prompts/get', measure: saturate(directGet) },
          { label: 'federated prompts/get', measure: saturate(federatedGet) },
          { label: 'direct resources/read', measure: saturate(directRead) },
          { label: 'federated resources/read', measure: saturate(federatedRead) },
        ],
        s,
        ([dg, fg, dr, fr]) =>
          `prompts/get direct ${fmt(dg.rps)}/s, federated ${fmt(fg.rps)}/s (p50 ${fg.p50} ms), ratio ${(fg.rps / dg.rps).toFixed(2)}; ` +
          `resources/read direct ${fmt(dr.rps)}/s, federated ${fmt(fr.rps)}/s (p50 ${fr.p50} ms), ratio ${(fr.rps / dr.rps).toFixed(2)}`,
      );
      const failures = [...dGet, ...fGet, ...dRead, ...fRead].reduce((sum, r) => sum + r.non2xx + r.errors, 0);
      const rps = (rounds: Closed[]) => medianOf(rounds, (r) => r.rps);
      const p50 = (rounds: Closed[]) => medianOf(rounds, (r) => r.p50);
      const getRatio = pairedRatio(fGet, dGet, (r) => r.rps);
      const readRatio = pairedRatio(fRead, dRead, (r) => r.rps);
      const { gets, reads } = await auditedRequests(gateway.database.url);
      return {
        id: 'P9',
        what: p9.what,
        baseline: `get ${fmt(rps(dGet))}/s, read ${fmt(rps(dRead))}/s direct`,
        candidate: `get ${fmt(rps(fGet))}/s, read ${fmt(rps(fRead))}/s`,
        ratio: `get ${times(getRatio)}; read ${times(readRatio)}`,
        goal: `≥ ${RATIO_GOAL}× each`,
        met: getRatio >= RATIO_GOAL && readRatio >= RATIO_GOAL,
        notes: [
          `P9: p50 at saturation (${s.connections} connections): prompts/get direct ${p50(dGet)} ms, federated ${p50(fGet)} ms; ` +
            `resources/read direct ${p50(dRead)} ms, federated ${p50(fRead)} ms`,
          `P9: audit records written: ${gets} prompt.get, ${reads} resource.read (one per federated request)`,
        ],
        problems: failures > 0 ? [`P9: ${failures} non-2xx answers or errors`] : [],
      };
    }),
};

/** How many prompt.get and resource.read audit records the federated sides wrote. */
async function auditedRequests(databaseUrl: string): Promise<{ gets: number; reads: number }> {
  const pool = new Pool({ connectionString: databaseUrl, max: 1 });
  try {
    const { rows } = await pool.query(
      `SELECT (SELECT count(*)::int FROM audit_logs WHERE action = 'prompt.get' AND resource = $1) AS gets,
              (SELECT count(*)::int FROM audit_logs WHERE action = 'resource.read' AND resource = $2) AS reads`,
      [`prompt:bench.${PROMPT.name}`, `resource:${FEDERATED_DOC_URI}`],
    );
    return rows[0];
  } finally {
    await pool.end();
  }
}

/** One request must answer 200 with a result (not a JSON-RPC error) carrying `expected`. */
async function expectAnswer(target: Target, expected: string): Promise<void> {
  const response = await fetch(target.url, { method: 'POST', headers: target.headers, body: target.body });
  const text = await response.text();
  if (response.status !== 200 || !text.includes(expected) || text.includes('"error":{')) {
    throw new Error(`${target.url} did not answer ${(target.body ?? '').slice(0, 80)}…: ${response.status} ${text.slice(0, 500)}`);
  }
}
