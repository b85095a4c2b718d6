import { Client, ProtocolError, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { CallToolResult, ClientCapabilities } from '@modelcontextprotocol/client';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { Era } from '../mcp/mcp-test-kit';
import { startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, execute, login, toolsEnv } from '../tools/tools-test-kit';
import { stdioUpstream, upstreamHealth, waitFor, writeUpstreamsFile } from './upstream-test-kit';

const RELAY_UPSTREAM = join(__dirname, 'fixtures', 'relay-upstream.cjs');
const CAPABILITIES: ClientCapabilities = { sampling: {}, elicitation: { form: {}, url: {} }, roots: {} };
const FORM_MESSAGE = 'Which city do you live in?';
const SIGN_IN_URL = 'https://auth.example.com/start?flow=42';

/** What an agent's handlers were asked, in order. */
interface Agent {
  client: Client;
  asked: Array<{ method: string; params: Record<string, any> }>;
}

/** An official v2 SDK agent on the gateway: 2026-07-28 (pinned) or the 2025 era; declaring sampling, elicitation and roots or nothing. */
async function agent(t: TestApp, caller: Caller, era: Era, declares: boolean, options: { autoFulfill?: boolean } = {}): Promise<Agent> {
  const asked: Agent['asked'] = [];
  const client = new Client(
    { name: `relay-${era}`, version: '1.0.0' },
    {
      ...(era === 'modern' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {}),
      ...(declares ? { capabilities: CAPABILITIES } : {}),
      ...(options.autoFulfill === false ? { inputRequired: { autoFulfill: false } } : {}),
    },
  );
  if (declares) {
    client.setRequestHandler('sampling/createMessage', async (request) => {
      asked.push({ method: request.method, params: request.params });
      return { role: 'assistant', model: 'test-model', content: { type: 'text', text: 'gates open, tokens flow' } };
    });
    client.setRequestHandler('elicitation/create', async (request) => {
      asked.push({ method: request.method, params: request.params });
      return request.params.mode === 'url' ? { action: 'accept' } : { action: 'accept', content: { city: 'Tromsø' } };
    });
    client.setRequestHandler('roots/list', async (request) => {
      asked.push({ method: request.method, params: request.params ?? {} });
      return { roots: [{ uri: 'file:///work/project', name: 'project' }] };
    });
  }
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${t.baseUrl}/api/v1/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${caller.token}` } },
    }),
  );
  return { client, asked };
}

/** Tool → the answer the fixture reports once it has the agent's input (see the handlers above). */
const ASKS: Array<[string, string, string]> = [
  ['ask-sampling', 'sampling/createMessage', 'gates open, tokens flow'],
  ['ask-form', 'elicitation/create', 'accept:{"city":"Tromsø"}'],
  ['ask-url', 'elicitation/create', 'accept:{}'],
  ['ask-roots', 'roots/list', 'file:///work/project'],
];

function structured(result: unknown): { answer: string; requestState: string | null } {
  return (result as CallToolResult).structuredContent as { answer: string; requestState: string | null };
}

/**
 * Server-to-client requests of a federated tool reach the agent that made the call: our own
 * upstream (official server SDK, fixtures/relay-upstream.cjs) asks for sampling, elicitation
 * (form and URL mode) and roots. It is federated twice: `relay25` on the 2025 era (its requests
 * are real requests on the call) and `relay26` on 2026-07-28 (InputRequiredResult round trips).
 * Agents on both eras, with and without the capabilities, call both.
 */
describe('Server-to-client requests are relayed to the calling agent', () => {
  let t: TestApp;
  let db: DataSource;
  let admin: Caller;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smcp-relay-'));
    const file = writeUpstreamsFile(dir, [
      stdioUpstream('relay25', RELAY_UPSTREAM, [], { protocol: 'legacy' }),
      // A wide probe hang guard: on stdio the SDK takes a probe that times out for a 2025-only server.
      stdioUpstream('relay26', RELAY_UPSTREAM, [], { protocol: 'auto', timeouts: { connectMs: 120_000 } }),
    ]);
    t = await startTestApp('postgres', { env: toolsEnv({ MCP_UPSTREAMS_FILE: file }) });
    db = t.app.get(DataSource);
    admin = await login(t, ADMIN_EMAIL);
    for (const upstream of ['relay25', 'relay26']) {
      await waitFor(
        `the tools of ${upstream} in the catalogue`,
        async () => {
          const res = await execute(t, admin, `${upstream}.plain`, { parameters: {} });
          return res.status === 200;
        },
        150_000,
      );
    }
  });

  afterAll(() => t?.close());

  it('speaks 2025 to relay25 and 2026-07-28 to relay26', async () => {
    expect((await upstreamHealth(t, 'relay25'))?.era).toBe('2025');
    expect((await upstreamHealth(t, 'relay26'))?.era).toBe('2026-07-28');
  });

  describe.each<[Era, string]>([
    ['legacy', 'relay25'],
    ['modern', 'relay26'],
    ['legacy', 'relay26'],
  ])('a %s agent declaring the capabilities, calling %s', (era, upstream) => {
    let a: Agent;
    beforeAll(async () => {
      a = await agent(t, admin, era, true);
    });
    afterAll(() => a?.client.close());

    it.each(ASKS)('%s: the agent is asked (%s), answers, and the tool completes with its answer', async (tool, method, answer) => {
      const before = a.asked.length;
      const result = await a.client.callTool({ name: `${upstream}.${tool}`, arguments: {} });
      expect((result as CallToolResult).isError).toBeUndefined();
      // The upstream got the agent's answer and its own requestState back, byte for byte.
      expect(structured(result)).toEqual({ answer, requestState: `state-of-${tool}` });
      const seen = a.asked.slice(before);
      expect(seen.map((request) => request.method)).toEqual([method]);
      if (tool === 'ask-form') expect(seen[0].params.message).toBe(FORM_MESSAGE);
      if (tool === 'ask-url') {
        expect(seen[0].params.mode).toBe('url');
        expect(seen[0].params.url).toBe(SIGN_IN_URL);
      }
      if (tool === 'ask-sampling') expect(seen[0].params.maxTokens).toBe(64);
    });
  });

  it("relays the 2025 upstream's notifications/elicitation/complete to the agent it sent to the URL, and to no other", async () => {
    const a = await agent(t, admin, 'legacy', true);
    const b = await agent(t, admin, 'legacy', true);
    const completed = new Map<Agent, string[]>([
      [a, []],
      [b, []],
    ]);
    for (const [who, ids] of completed) {
      who.client.setNotificationHandler('notifications/elicitation/complete', (notification) => {
        ids.push(notification.params.elicitationId);
      });
    }
    try {
      const result = await a.client.callTool({ name: 'relay25.ask-url', arguments: {} });
      expect(structured(result)).toEqual({ answer: 'accept:{}', requestState: 'state-of-ask-url' });
      expect(a.asked.map((request) => request.params.elicitationId)).toEqual(['flow-42']);
      await waitFor('the completion at the agent', async () => completed.get(a)!.length > 0);
      await b.client.callTool({ name: 'relay25.plain', arguments: {} });
      expect(completed.get(a)).toEqual(['flow-42']);
      expect(completed.get(b)).toEqual([]);
    } finally {
      await a.client.close();
      await b.client.close();
    }
  });

  it('audits each relayed request: what was asked (method, message, URL), of whom, for which tool', async () => {
    const rows: Array<{ user_id: string; resource: string; result: string; details: Record<string, any> }> = await db.query(
      `SELECT user_id, resource, result, details FROM audit_logs WHERE action = 'mcp.client_request.relayed' AND resource = ANY($1) ORDER BY seq`,
      [['tool:relay25.ask-form', 'tool:relay25.ask-url', 'tool:relay26.ask-form', 'tool:relay26.ask-sampling']],
    );
    const form25 = rows.find((row) => row.resource === 'tool:relay25.ask-form')!;
    expect(form25.user_id).toBe(admin.userId);
    expect(form25.result).toBe('success');
    expect(form25.details.method).toBe('elicitation/create');
    expect(form25.details.mode).toBe('form');
    expect(form25.details.message).toBe(FORM_MESSAGE);
    expect(form25.details.fields).toEqual(['city']);
    expect(form25.details.status).toBe('answered');
    expect(form25.details.action).toBe('accept');
    // The answer itself (the city) is never in the audit trail.
    expect(Object.values(form25.details)).not.toContain('Tromsø');
    const url25 = rows.find((row) => row.resource === 'tool:relay25.ask-url')!;
    expect(url25.details.mode).toBe('url');
    expect(url25.details.url).toBe(SIGN_IN_URL);
    // 2026-07-28: audited when the InputRequiredResult goes to the agent.
    const form26 = rows.filter((row) => row.resource === 'tool:relay26.ask-form');
    expect(form26.length).toBeGreaterThanOrEqual(2);
    expect(form26.map((row) => row.details.status)).toEqual(form26.map(() => 'asked'));
    expect(form26[0].details.era).toBe('2026-07-28');
    const sampling26 = rows.find((row) => row.resource === 'tool:relay26.ask-sampling')!;
    expect(sampling26.details.method).toBe('sampling/createMessage');
    expect(sampling26.details.messages).toBe(1);
  });

  describe('an agent that did not declare the capabilities', () => {
    it('2026-07-28: gets the spec error -32021 (missing required client capability), and is never asked', async () => {
      const a = await agent(t, admin, 'modern', false);
      try {
        const error = await a.client.callTool({ name: 'relay26.ask-form', arguments: {} }).then(
          () => undefined,
          (caught: unknown) => caught,
        );
        expect(error).toBeInstanceOf(ProtocolError);
        expect((error as ProtocolError).code).toBe(-32021);
        expect(a.asked).toEqual([]);
      } finally {
        await a.client.close();
      }
    });

    it('2025 era: the upstream is refused (-32601, as by a client without the capability) and the refusal is audited', async () => {
      const a = await agent(t, admin, 'legacy', false);
      try {
        const result = (await a.client.callTool({ name: 'relay25.ask-roots', arguments: {} })) as CallToolResult;
        // The upstream's SDK reports the failed request as its tool's error result.
        expect(result.isError).toBe(true);
        expect((result.content[0] as { text: string }).text).toContain('the calling agent did not declare the roots capability');
        const [row] = await db.query(
          `SELECT result, details FROM audit_logs WHERE action = 'mcp.client_request.relayed' AND resource = 'tool:relay25.ask-roots' AND result = 'failure'`,
        );
        expect(row.details.status).toBe('refused');
        expect(row.details.reason).toBe('capability roots not declared');
      } finally {
        await a.client.close();
      }
    });
  });

  describe('the requestState an agent gets is tamper-proof', () => {
    let a: Agent;
    let round: { resultType: string; inputRequests: Record<string, unknown>; requestState: string };
    beforeAll(async () => {
      a = await agent(t, admin, 'modern', true, { autoFulfill: false });
      round = (await a.client.callTool({ name: 'relay26.ask-form', arguments: {} }, { allowInputRequired: true })) as never;
    });
    afterAll(() => a?.client.close());

    const retry = (name: string, requestState: string) =>
      a.client
        .callTool(
          { name, arguments: {}, inputResponses: { answer: { action: 'accept', content: { city: 'Bodø' } } }, requestState } as never,
          { allowInputRequired: true },
        )
        .then(
          (result) => ({ result, error: undefined }),
          (error: unknown) => ({ result: undefined, error: error as ProtocolError }),
        );

    it("is the gateway's sealed state, not the upstream's", () => {
      expect(round.resultType).toBe('input_required');
      expect(Object.keys(round.inputRequests)).toEqual(['answer']);
      expect(round.requestState.startsWith('g1.')).toBe(true);
      expect(round.requestState).not.toContain('state-of');
      expect(Buffer.from(round.requestState.slice(3), 'base64url').toString('latin1')).not.toContain('state-of');
    });

    it('an untouched state completes the call', async () => {
      const { result } = await retry('relay26.ask-form', round.requestState);
      expect(structured(result)).toEqual({ answer: 'accept:{"city":"Bodø"}', requestState: 'state-of-ask-form' });
    });

    it.each([
      ['altered', (state: string) => state.slice(0, -2) + (state.endsWith('A') ? 'B' : 'A') + state.slice(-1), 'relay26.ask-form'],
      ['the upstream state in clear', () => 'state-of-ask-form', 'relay26.ask-form'],
      ['replayed for another tool', (state: string) => state, 'relay26.ask-sampling'],
    ])("a state %s is refused with -32602, the SDK's answer to a state it cannot verify", async (_case, change, tool) => {
      const { result, error } = await retry(tool, change(round.requestState));
      expect(result).toBeUndefined();
      expect(error).toBeInstanceOf(ProtocolError);
      expect(error!.code).toBe(-32602);
      expect(error!.message).toContain('Invalid or expired requestState');
    });
  });
});
