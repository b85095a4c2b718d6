import { Client, ProtocolError, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { CallToolResult, ClientCapabilities } from '@modelcontextprotocol/client';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { Era } from '../mcp/mcp-test-kit';
import { startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, execute, login, signUp, toolsEnv } from '../tools/tools-test-kit';
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
    // Held calls are released quickly here, so the release can be watched.
    t = await startTestApp('postgres', { env: toolsEnv({ MCP_UPSTREAMS_FILE: file, MCP_RELAY_HOLD_TIMEOUT_MS: '8000' }) });
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
    // The gateway holds the 2025 upstream's call open and asks the agent with an InputRequiredResult.
    ['modern', 'relay25'],
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

    it('ask-twice: the agent is asked twice (a haiku, then a city), and the tool completes with both answers', async () => {
      const before = a.asked.length;
      const result = await a.client.callTool({ name: `${upstream}.ask-twice`, arguments: {} });
      expect(structured(result)).toEqual({
        answer: 'gates open, tokens flow / accept:{"city":"Tromsø"}',
        requestState: 'haiku:gates open, tokens flow',
      });
      expect(a.asked.slice(before).map((request) => request.method)).toEqual(['sampling/createMessage', 'elicitation/create']);
    });

    it('prompts/get: the agent is asked for the city, and gets the prompt the upstream made with it', async () => {
      const before = a.asked.length;
      const prompt = await a.client.getPrompt({ name: `${upstream}.ask-city` });
      expect(prompt.messages).toEqual([
        { role: 'user', content: { type: 'text', text: 'Hello, accept:{"city":"Tromsø"} (state-of-ask-city)' } },
      ]);
      expect(a.asked.slice(before).map((request) => request.params.message)).toEqual([FORM_MESSAGE]);
    });

    it('resources/read: the agent is asked for its roots, and reads the contents the upstream made with them', async () => {
      const resource = (await a.client.listResources()).resources.find(
        (candidate) => candidate.name === 'roots' && candidate.uri.includes(upstream),
      );
      expect(resource).toBeDefined();
      const before = a.asked.length;
      const read = await a.client.readResource({ uri: resource!.uri });
      expect(read.contents).toEqual([{ uri: resource!.uri, mimeType: 'text/plain', text: 'file:///work/project (state-of-roots)' }]);
      expect(a.asked.slice(before).map((request) => request.method)).toEqual(['roots/list']);
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

    // A 2026-07-28 agent's call of a 2025-era upstream is held only for what the agent declared.
    it.each<[Era, string, string]>([
      ['modern', 'ask-sampling', 'sampling'],
      ['legacy', 'ask-roots', 'roots'],
    ])(
      'a %s agent calling the 2025 upstream: its request is refused (-32601, as by a client without the capability), audited, and the agent is never asked',
      async (era, tool, capability) => {
        const a = await agent(t, admin, era, false);
        try {
          const result = (await a.client.callTool({ name: `relay25.${tool}`, arguments: {} })) as CallToolResult;
          expect(a.asked).toEqual([]);
          // The upstream's SDK reports the failed request as its tool's error result.
          expect(result.isError).toBe(true);
          expect((result.content[0] as { text: string }).text).toContain(`the calling agent did not declare the ${capability} capability`);
          const [row] = await db.query(
            `SELECT result, details FROM audit_logs WHERE action = 'mcp.client_request.relayed' AND resource = $1 AND result = 'failure'`,
            [`tool:relay25.${tool}`],
          );
          expect(row.details.status).toBe('refused');
          expect(row.details.era).toBe(era === 'modern' ? '2026-07-28' : '2025');
          expect(row.details.reason).toBe(`capability ${capability} not declared`);
        } finally {
          await a.client.close();
        }
      },
    );
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

  /**
   * A 2026-07-28 agent calling a 2025-era upstream that asks in the middle of its call: the
   * gateway holds the upstream call open and hands the agent the upstream's request with a sealed
   * state naming the held call. The agent here answers by hand (autoFulfill off), to try what an
   * attacker would with that state.
   */
  describe('a call held open for a 2026-07-28 agent (2025-era upstream)', () => {
    let a: Agent;
    let mallory: Agent;
    let round: { resultType: string; inputRequests: Record<string, { method: string; params: Record<string, any> }>; requestState: string };
    let key: string;
    const CITY = { action: 'accept', content: { city: 'Bodø' } };

    const call = (who: Agent, name: string, retry?: { key: string; requestState: string }) =>
      who.client
        .callTool(
          {
            name,
            arguments: {},
            ...(retry ? { inputResponses: { [retry.key]: CITY }, requestState: retry.requestState } : {}),
          } as never,
          { allowInputRequired: true },
        )
        .then(
          (result) => ({ result: result as any, error: undefined }),
          (error: unknown) => ({ result: undefined, error: error as ProtocolError }),
        );

    beforeAll(async () => {
      a = await agent(t, admin, 'modern', true, { autoFulfill: false });
      mallory = await agent(t, await signUp(t, 'relay-mallory@example.com'), 'modern', true, { autoFulfill: false });
      round = (await call(a, 'relay25.ask-form')).result;
      key = Object.keys(round.inputRequests)[0];
    });
    afterAll(async () => {
      await a?.client.close();
      await mallory?.client.close();
    });

    it("answers with an InputRequiredResult carrying the upstream's request as it made it, and a sealed state", () => {
      expect(round.resultType).toBe('input_required');
      expect(Object.keys(round.inputRequests)).toHaveLength(1);
      const request = round.inputRequests[key];
      expect(request.method).toBe('elicitation/create');
      expect(request.params.message).toBe(FORM_MESSAGE);
      expect(request.params.requestedSchema).toEqual({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] });
      expect(round.requestState.startsWith('g1.')).toBe(true);
    });

    it.each<[string, () => Promise<{ error: ProtocolError | undefined }>]>([
      [
        'altered',
        () =>
          call(a, 'relay25.ask-form', {
            key,
            requestState: round.requestState.slice(0, -2) + (round.requestState.endsWith('A') ? 'B' : 'A') + round.requestState.slice(-1),
          }),
      ],
      [
        'of its own making',
        () => call(a, 'relay25.ask-form', { key, requestState: 'g1.' + Buffer.from('{"h":["x",1,"y"],"e":9e15}').toString('base64url') }),
      ],
      ['replayed for another tool', () => call(a, 'relay25.ask-sampling', { key, requestState: round.requestState })],
      ['used by another user', () => call(mallory, 'relay25.ask-form', { key, requestState: round.requestState })],
    ])('a state %s is refused with -32602, and the held call is not touched', async (_case, retry) => {
      const { error } = await retry();
      expect(error).toBeInstanceOf(ProtocolError);
      expect(error!.code).toBe(-32602);
      expect(error!.message).toContain('Invalid or expired requestState');
      expect(mallory.asked).toEqual([]);
    });

    it("the agent's answer reaches the upstream, whose result reaches the agent", async () => {
      const { result } = await call(a, 'relay25.ask-form', { key, requestState: round.requestState });
      expect(result.resultType).not.toBe('input_required');
      expect(result.isError).toBeUndefined();
      expect(structured(result)).toEqual({ answer: 'accept:{"city":"Bodø"}', requestState: 'state-of-ask-form' });
    });

    it('a state used once is refused when replayed after the call completed', async () => {
      const { result, error } = await call(a, 'relay25.ask-form', { key, requestState: round.requestState });
      expect(result).toBeUndefined();
      expect(error!.code).toBe(-32602);
      expect(error!.message).toContain('no longer held');
      expect((error!.data as { reason: string }).reason).toBe('call_not_held');
    });

    it('audits the relayed request as answered, on the 2026-07-28 era, of whom', async () => {
      const rows: Array<{ user_id: string; result: string; details: Record<string, any> }> = await db.query(
        `SELECT user_id, result, details FROM audit_logs WHERE action = 'mcp.client_request.relayed' AND resource = 'tool:relay25.ask-form' AND details->>'era' = '2026-07-28' ORDER BY seq`,
      );
      const answered = rows.filter((row) => row.details.status === 'answered');
      expect(answered.length).toBeGreaterThanOrEqual(1);
      expect(answered[0].user_id).toBe(admin.userId);
      expect(answered[0].result).toBe('success');
      expect(answered[0].details.method).toBe('elicitation/create');
      expect(answered[0].details.message).toBe(FORM_MESSAGE);
      expect(answered[0].details.action).toBe('accept');
      expect(Object.values(answered[0].details)).not.toContain('Bodø');
    });

    it('a held call the agent never resumes is released after MCP_RELAY_HOLD_TIMEOUT_MS: audited, cancelled upstream, its state refused', async () => {
      const held = (await call(a, 'relay25.ask-url')).result;
      expect(held.resultType).toBe('input_required');
      const heldKey = Object.keys(held.inputRequests)[0];
      const expired = async () =>
        (
          await db.query(
            `SELECT user_id, details FROM audit_logs WHERE action = 'mcp.client_request.relayed' AND resource = 'tool:relay25.ask-url' AND details->>'status' = 'expired'`,
          )
        )[0] as { user_id: string; details: Record<string, any> } | undefined;
      await waitFor('the held call released', async () => (await expired()) !== undefined, 30_000);
      const row = (await expired())!;
      expect(row.user_id).toBe(admin.userId);
      expect(row.details.era).toBe('2026-07-28');
      expect(row.details.reason).toContain('MCP_RELAY_HOLD_TIMEOUT_MS');
      const { error } = await call(a, 'relay25.ask-url', { key: heldKey, requestState: held.requestState });
      expect(error!.code).toBe(-32602);
      // The upstream is free again: the next call is asked and completes.
      const next = await agent(t, admin, 'modern', true);
      try {
        const result = await next.client.callTool({ name: 'relay25.ask-form', arguments: {} });
        expect(structured(result)).toEqual({ answer: 'accept:{"city":"Tromsø"}', requestState: 'state-of-ask-form' });
      } finally {
        await next.client.close();
      }
    });
  });
});
