import { Client, LOG_LEVEL_META_KEY, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { LoggingMessageNotificationParams } from '@modelcontextprotocol/client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Era, mcpEnv } from '../mcp/mcp-test-kit';
import { ADMIN_EMAIL, Caller, login } from '../support/identity';
import { http, startTestApp, TestApp } from '../support/test-app';
import {
  getTool,
  referenceUpstreamEntry,
  ReferenceUpstream,
  startReferenceUpstream,
  stopReferenceUpstream,
  upstreamHealth,
  waitFor,
  writeUpstreamsFile,
} from './upstream-test-kit';

const WATCHED = 'test://watched-resource';
const TOOL_LOGS = ['Tool execution started', 'Tool processing data', 'Tool execution completed'];

/** An official v2 SDK agent and what reached it unasked: log messages and resource updates. */
interface Agent {
  client: Client;
  logs: LoggingMessageNotificationParams[];
  updates: string[];
}

async function agent(t: TestApp, caller: Caller, era: Era, path = '/api/v1/mcp'): Promise<Agent> {
  const client = new Client(
    { name: `scoping-${era}`, version: '1.0.0' },
    {
      ...(era === 'modern' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {}),
      capabilities: { elicitation: { form: {} } },
    },
  );
  const logs: LoggingMessageNotificationParams[] = [];
  const updates: string[] = [];
  client.setNotificationHandler('notifications/message', (notification) => {
    logs.push(notification.params);
  });
  client.setNotificationHandler('notifications/resources/updated', (notification) => {
    updates.push(notification.params.uri);
  });
  client.setRequestHandler('elicitation/create', async () => ({ action: 'accept', content: { context: 'from the agent' } }));
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${t.baseUrl}${path}`), {
      requestInit: { headers: { authorization: `Bearer ${caller.token}` } },
    }),
  );
  return { client, logs, updates };
}

const texts = (logs: LoggingMessageNotificationParams[]) => logs.map((log) => log.data);

/**
 * What one agent asks of an upstream the gateway reaches on 2026-07-28 (our reference upstream:
 * official v2 server SDK, both eras) stays that agent's: a 2025-era agent's log level and resource
 * subscriptions are translated (the level goes with each of its requests, a subscription becomes
 * a subscriptions/listen stream upstream), a 2026-07-28 agent's request log level and listen
 * filter likewise, and what comes back reaches the agent that asked and no other. prompts/get
 * relays the upstream's input round trip as tools/call does.
 */
describe('Logging, subscriptions and input rounds of an upstream on 2026-07-28 stay with the agent that asked', () => {
  let dir: string;
  let reference: ReferenceUpstream;
  let t: TestApp;
  let admin: Caller;
  const open: Client[] = [];
  const connect = async (era: Era, path?: string) => {
    const made = await agent(t, admin, era, path);
    open.push(made.client);
    return made;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'smcp-scoping-'));
    reference = await startReferenceUpstream();
    // The same upstream once more, spoken to in the 2025 era (its tools under `legacy.`).
    const legacy = { ...referenceUpstreamEntry(reference), name: 'legacy', idPrefix: 'legacy.', protocol: 'legacy' };
    const file = writeUpstreamsFile(dir, [referenceUpstreamEntry(reference), legacy]);
    t = await startTestApp('postgres', { env: mcpEnv({ MCP_UPSTREAMS_FILE: file }) });
    admin = await login(t, ADMIN_EMAIL);
    await waitFor('the reference upstream in the catalogue', async () => (await getTool(t, admin, 'touch_watched_resource')) !== undefined);
    await waitFor('its 2025-era twin in the catalogue', async () => (await getTool(t, admin, 'legacy.test_elicitation')) !== undefined);
  }, 180_000);

  afterAll(async () => {
    for (const client of open) await client.close().catch(() => undefined);
    await t?.close();
    await stopReferenceUpstream(reference);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reaches the upstream on 2026-07-28 (and its twin on 2025)', async () => {
    expect((await upstreamHealth(t, 'reference'))?.era).toBe('2026-07-28');
    expect((await upstreamHealth(t, 'legacy'))?.era).toBe('2025');
  });

  it("a 2025-era upstream is set to the least severe level any agent asked for: a later agent's stricter level does not silence the first", async () => {
    const a = await connect('legacy');
    const b = await connect('legacy');
    await a.client.setLoggingLevel('debug');
    await b.client.setLoggingLevel('error');
    await a.client.callTool({ name: 'legacy.test_tool_with_logging', arguments: {} });
    await waitFor("the upstream's three info messages at the agent that asked for debug", async () => a.logs.length >= 3);
    expect(texts(a.logs)).toEqual(TOOL_LOGS);
    await b.client.callTool({ name: 'test_simple_text', arguments: {} });
    expect(texts(b.logs)).toEqual([]);
  });

  it("with two calls in flight on one 2025-era upstream connection, each call's elicitation goes to the agent that made it", async () => {
    const asked: string[] = [];
    let bothAsked!: () => void;
    const barrier = new Promise<void>((resolve) => (bothAsked = resolve));
    const answering = async (name: string) => {
      const made = await connect('legacy');
      made.client.setRequestHandler('elicitation/create', async () => {
        asked.push(name);
        if (asked.length === 2) bothAsked();
        // Both calls are in flight, each waiting for its agent, before either is answered.
        await Promise.race([barrier, new Promise((resolve) => setTimeout(resolve, 10_000))]);
        return { action: 'accept', content: { username: name, email: `${name}@example.com` } };
      });
      return made;
    };
    const [a, b] = await Promise.all([answering('ada'), answering('bob')]);
    const [forA, forB] = await Promise.all(
      [a, b].map((made) => made.client.callTool({ name: 'legacy.test_elicitation', arguments: { message: 'Who are you?' } })),
    );
    expect(asked.sort()).toEqual(['ada', 'bob']);
    expect(forA.content).toEqual([
      { type: 'text', text: 'User response: action=accept, content={"username":"ada","email":"ada@example.com"}' },
    ]);
    expect(forB.content).toEqual([
      { type: 'text', text: 'User response: action=accept, content={"username":"bob","email":"bob@example.com"}' },
    ]);
  });

  it("a 2025 agent's log level goes with its call: it gets the call's messages, another agent that set a level gets none", async () => {
    const a = await connect('legacy');
    const b = await connect('legacy');
    const quiet = await connect('legacy');
    expect(a.client.getServerCapabilities()?.logging).toEqual({});
    await a.client.setLoggingLevel('info');
    await b.client.setLoggingLevel('debug');
    const result = await a.client.callTool({ name: 'test_tool_with_logging', arguments: {} });
    expect(result.content).toEqual([{ type: 'text', text: 'Tool with logging executed successfully' }]);
    await waitFor("the call's three log messages", async () => a.logs.length >= 3);
    expect(texts(a.logs)).toEqual(TOOL_LOGS);
    expect(a.logs.map((log) => log.level)).toEqual(['info', 'info', 'info']);
    // B's and an agent's without a level: their own calls bring nothing of A's (nor, without a level, any).
    await b.client.callTool({ name: 'test_simple_text', arguments: {} });
    await quiet.client.callTool({ name: 'test_tool_with_logging', arguments: {} });
    expect(texts(b.logs)).toEqual([]);
    expect(texts(quiet.logs)).toEqual([]);
  });

  it("a 2025 agent's level filters: at warning, the upstream's info messages do not come", async () => {
    const a = await connect('legacy');
    await a.client.setLoggingLevel('warning');
    await a.client.callTool({ name: 'test_tool_with_logging', arguments: {} });
    expect(texts(a.logs)).toEqual([]);
  });

  it('a 2026-07-28 request that asks for log messages (its _meta log level) gets them; one that does not, none', async () => {
    const a = await connect('modern');
    await a.client.callTool({ name: 'test_tool_with_logging', arguments: {} });
    expect(texts(a.logs)).toEqual([]);
    await a.client.callTool({ name: 'test_tool_with_logging', arguments: {}, _meta: { [LOG_LEVEL_META_KEY]: 'debug' } });
    await waitFor("the request's three log messages", async () => a.logs.length >= 3);
    expect(texts(a.logs)).toEqual(TOOL_LOGS);
  });

  it('a 2025 agent subscribed to a resource hears of its updates; an agent that did not subscribe does not', async () => {
    const a = await connect('legacy');
    const b = await connect('legacy');
    expect(a.client.getServerCapabilities()?.resources?.subscribe).toBe(true);
    await expect(a.client.subscribeResource({ uri: WATCHED })).resolves.toEqual({});
    await waitFor('the update at the subscribed agent', async () => {
      await b.client.callTool({ name: 'touch_watched_resource', arguments: {} });
      return a.updates.length > 0;
    });
    expect(a.updates[0]).toBe(WATCHED);
    expect(b.updates).toEqual([]);
    // Unsubscribed: no more updates (the upstream's listen stream for it is closed).
    await expect(a.client.unsubscribeResource({ uri: WATCHED })).resolves.toEqual({});
    const heard = a.updates.length;
    await b.client.callTool({ name: 'touch_watched_resource', arguments: {} });
    await a.client.callTool({ name: 'test_simple_text', arguments: {} });
    expect(a.updates.length).toBe(heard);
  });

  it('a 2026-07-28 listen stream gets updates of a resource it names; on a context without that resource the URI is not honored', async () => {
    const created = await http(t.baseUrl, 'POST', '/api/v1/contexts', {
      token: admin.token,
      body: { name: 'text only', tools: ['test_simple_text', 'touch_watched_resource'] },
    });
    expect(created.status).toBe(201);
    const outside = await connect('modern', `/api/v1/contexts/${created.body.id}/mcp`);
    const refused = await outside.client.listen({ resourceSubscriptions: [WATCHED] });
    expect(refused.honoredFilter).toEqual({});

    const a = await connect('modern');
    const subscription = await a.client.listen({ resourceSubscriptions: [WATCHED] });
    expect(subscription.honoredFilter).toEqual({ resourceSubscriptions: [WATCHED] });
    await waitFor('the update on the listen stream', async () => {
      await outside.client.callTool({ name: 'touch_watched_resource', arguments: {} });
      return a.updates.length > 0;
    });
    expect(a.updates[0]).toBe(WATCHED);
    expect(outside.updates).toEqual([]);
    await subscription.close();
  });

  it("a 2025 agent's notifications/roots/list_changed reaches the 2025-era upstream", async () => {
    const client = new Client({ name: 'scoping-roots', version: '1.0.0' }, { capabilities: { roots: { listChanged: true } } });
    client.setRequestHandler('roots/list', async () => ({ roots: [] }));
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${t.baseUrl}/api/v1/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${admin.token}` } },
      }),
    );
    open.push(client);
    const changes = async () => Number(((await client.callTool({ name: 'legacy.roots_changes', arguments: {} })).content as any)[0].text);
    const before = await changes();
    await client.sendRootsListChanged();
    await waitFor('the change at the upstream', async () => (await changes()) === before + 1);
  });

  it.each<Era>(['legacy', 'modern'])(
    'prompts/get of a %s agent: the upstream asks it for input (elicitation) and the prompt completes with its answer',
    async (era) => {
      const a = await connect(era);
      const result = await a.client.getPrompt({ name: 'test_input_required_result_prompt' });
      expect(result.messages).toEqual([{ role: 'user', content: { type: 'text', text: 'Use this context: from the agent' } }]);
    },
  );
});
