import { Client, ProtocolError, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js';
import type {
  CallToolResult,
  ClientCapabilities,
  LoggingMessageNotificationParams,
  Prompt,
  Resource,
  ResourceTemplateType,
  ResourceUpdatedNotificationParams,
} from '@modelcontextprotocol/client';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { connectHttp, createContext, Era, installWebSocketGlobal, ticketFor } from '../mcp/mcp-test-kit';
import { http, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, login, signUp, toolsEnv } from '../tools/tools-test-kit';
import {
  directClient,
  EVERYTHING,
  freePort,
  HttpUpstream,
  relayedMeta,
  startEverythingHttp,
  stdioUpstream,
  waitFor,
  withoutClock,
  writeUpstreamsFile,
} from './upstream-test-kit';

installWebSocketGlobal();

/** How the gateway names a prefixed upstream's URIs (see libs/tools/src/upstream/federated-names.ts). */
const mapped = (uri: string) => `mcp-upstream://everything/${uri}`;
const DOCUMENT_PREFIX = 'demo://resource/static/document/';
const TEXT_TEMPLATE = 'demo://resource/dynamic/text/{resourceId}';
/** The fields of a tools/call result, for a field-by-field comparison (the hop's serverInfo out of _meta). */
function fieldsOf(result: unknown): Record<string, unknown> {
  const r = result as CallToolResult;
  return withoutClock({ content: r.content, structuredContent: r.structuredContent, isError: r.isError, _meta: relayedMeta(r._meta) });
}

/** server-everything names the session a log message is for; the gateway's session upstream is not the direct client's. */
function withoutSession(params: LoggingMessageNotificationParams): LoggingMessageNotificationParams {
  const data =
    typeof params.data === 'string' ? params.data.replace(/ - SessionId \S+$/, '').replace(/\s*(from session \S+)?\s*$/, '') : params.data;
  return { ...params, data };
}

const AGENT_CAPABILITIES: ClientCapabilities = { sampling: {}, elicitation: { form: {}, url: {} } };

/** What an agent (or the direct client) was asked by server-everything, and the answers it gives: the same on both sides. */
interface Asking {
  asked: Array<{ method: string; params: Record<string, unknown> }>;
}

function answerRequests(client: Client, into: Asking): void {
  client.setRequestHandler('sampling/createMessage', async (request) => {
    into.asked.push({ method: request.method, params: request.params as Record<string, unknown> });
    return { role: 'assistant', model: 'test-model', content: { type: 'text', text: 'A gateway, quiet, relays.' } };
  });
  client.setRequestHandler('elicitation/create', async (request) => {
    into.asked.push({ method: request.method, params: request.params as Record<string, unknown> });
    return request.params.mode === 'url' ? { action: 'accept' } : { action: 'accept', content: { name: 'Ada Lovelace', check: true } };
  });
}

/** A request's params without _meta (each hop has its own request ids and envelope there). */
function withoutMeta(params: Record<string, unknown>): Record<string, unknown> {
  const { _meta: _hop, ...rest } = params;
  return rest;
}

/**
 * Everything server-everything offers besides tools, federated: prompts, resources, resource
 * templates, completions, logging and subscriptions. It runs twice: as a stdio child under the
 * default prefix `everything.` (URIs rewritten into the gateway's scheme) and over Streamable
 * HTTP with an empty prefix (names and URIs passed through), the latter only for holders of
 * executions:read. The HTTP one, asked directly by an official v2 client, is the expectation.
 */
describe('Federated prompts, resources, completions, logging and subscriptions', () => {
  let t: TestApp;
  let remote: HttpUpstream;
  let direct: Client;
  let admin: Caller;
  let user: Caller;
  let db: DataSource;
  let directPrompts: Prompt[];
  let directResources: Resource[];
  let directTemplates: ResourceTemplateType[];

  beforeAll(async () => {
    remote = await startEverythingHttp(await freePort());
    const dir = mkdtempSync(join(tmpdir(), 'smcp-features-'));
    const file = writeUpstreamsFile(dir, [
      stdioUpstream('everything', EVERYTHING, ['stdio']),
      {
        name: 'remote',
        transport: 'http',
        url: remote.url,
        idPrefix: '',
        category: 'data',
        permissions: ['tools:execute', 'executions:read'],
      },
    ]);
    t = await startTestApp('postgres', { env: toolsEnv({ MCP_UPSTREAMS_FILE: file }) });
    db = t.app.get(DataSource);
    admin = await login(t, ADMIN_EMAIL);
    user = await signUp(t, 'features-user@example.com');
    direct = await directClient(remote.url);
    directPrompts = (await direct.listPrompts()).prompts;
    directResources = (await direct.listResources()).resources;
    directTemplates = (await direct.listResourceTemplates()).resourceTemplates;
    // Both upstreams connected: the gateway lists both sets of prompts.
    await waitFor(
      'both upstreams connected',
      async () => {
        const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, admin.token, 'modern');
        try {
          if (!client.getServerCapabilities()?.prompts) return undefined;
          const names = (await client.listPrompts()).prompts.map((prompt) => prompt.name);
          return names.length === 2 * directPrompts.length ? true : undefined;
        } finally {
          await client.close();
        }
        // Generous: two server-everything processes start on a loaded machine.
      },
      120_000,
      500,
    );
  }, 180_000);

  afterAll(async () => {
    await direct?.close();
    await t?.close();
    await remote?.kill();
  });

  it('the upstream offers what this suite relies on', () => {
    expect(directPrompts.map((prompt) => prompt.name)).toEqual(
      expect.arrayContaining(['simple-prompt', 'args-prompt', 'completable-prompt']),
    );
    expect(directResources.some((resource) => resource.uri.startsWith(DOCUMENT_PREFIX))).toBe(true);
    expect(directTemplates.map((template) => template.uriTemplate)).toContain(TEXT_TEMPLATE);
  });

  describe.each<Era>(['modern', 'legacy'])('over /api/v1/mcp (%s era)', (era) => {
    let client: Client;
    beforeAll(async () => {
      ({ client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, admin.token, era));
    });
    afterAll(async () => {
      await client?.close();
    });

    it('advertises prompts, resources (with subscriptions), completions and logging', () => {
      const capabilities = client.getServerCapabilities()!;
      expect(capabilities.tools).toBeDefined();
      expect(capabilities.prompts).toBeDefined();
      expect(capabilities.resources).toBeDefined();
      expect(capabilities.completions).toBeDefined();
      expect(capabilities.logging).toBeDefined();
      if (era === 'legacy') expect(capabilities.resources!.subscribe).toBe(true);
    });

    it("lists each upstream's prompts as it defines them, under the upstream's prefix", async () => {
      const prompts = (await client.listPrompts()).prompts;
      for (const upstream of directPrompts) {
        // The empty-prefix upstream's prompt, exactly; the prefixed one's, renamed and otherwise the same.
        expect(prompts.find((prompt) => prompt.name === upstream.name)).toEqual(upstream);
        expect(prompts.find((prompt) => prompt.name === `everything.${upstream.name}`)).toEqual({
          ...upstream,
          name: `everything.${upstream.name}`,
        });
      }
      expect(prompts).toHaveLength(2 * directPrompts.length);
    });

    it.each([
      ['simple-prompt', undefined],
      ['args-prompt', { city: 'Bergen', state: 'Vestland' }],
      ['completable-prompt', { department: 'Sales', name: 'Eve' }],
      ['resource-prompt', { resourceType: 'Text', resourceId: '2' }],
      ['resource-prompt', { resourceType: 'Blob', resourceId: '5' }],
    ])('gets %s exactly as the upstream answers it', async (name, args) => {
      const expected = await direct.getPrompt(args ? { name, arguments: args } : { name });
      for (const federated of [name, `everything.${name}`]) {
        const actual = await client.getPrompt(args ? { name: federated, arguments: args } : { name: federated });
        // Embedded resources are made on the fly, stamped with the time.
        expect(withoutClock(actual.messages)).toEqual(withoutClock(expected.messages));
        expect(actual.description).toEqual(expected.description);
        expect(relayedMeta(actual._meta)).toEqual(relayedMeta(expected._meta));
      }
    });

    it('lists resources with URIs passed through (empty prefix) or rewritten into the gateway scheme', async () => {
      const resources = (await client.listResources()).resources;
      for (const upstream of directResources.filter((resource) => resource.uri.startsWith(DOCUMENT_PREFIX))) {
        expect(resources.find((resource) => resource.uri === upstream.uri)).toEqual(upstream);
        expect(resources.find((resource) => resource.uri === mapped(upstream.uri))).toEqual({ ...upstream, uri: mapped(upstream.uri) });
      }
      const templates = (await client.listResourceTemplates()).resourceTemplates;
      for (const upstream of directTemplates) {
        expect(templates.find((template) => template.uriTemplate === upstream.uriTemplate)).toEqual(upstream);
        expect(templates.find((template) => template.uriTemplate === mapped(upstream.uriTemplate))).toEqual({
          ...upstream,
          uriTemplate: mapped(upstream.uriTemplate),
        });
      }
    });

    it('reads a listed resource and a template expansion as the upstream answers them, under the URI the agent used', async () => {
      const document = directResources.find((resource) => resource.uri.startsWith(DOCUMENT_PREFIX))!;
      for (const uri of [document.uri, 'demo://resource/dynamic/text/3', 'demo://resource/dynamic/blob/2']) {
        const expected = await direct.readResource({ uri });
        const passedThrough = await client.readResource({ uri });
        expect(withoutClock(passedThrough.contents)).toEqual(withoutClock(expected.contents));
        const rewritten = await client.readResource({ uri: mapped(uri) });
        expect(withoutClock(rewritten.contents)).toEqual(
          withoutClock(expected.contents.map((content) => ({ ...content, uri: mapped(content.uri) }))),
        );
      }
    });

    it('routes completions to the upstream that owns the prompt or template', async () => {
      const ask = (c: Client, name: string, value: string, context?: Record<string, string>) =>
        c.complete({
          ref: { type: 'ref/prompt', name },
          argument: { name: context ? 'name' : 'department', value },
          ...(context ? { context: { arguments: context } } : {}),
        });
      const expected = await ask(direct, 'completable-prompt', 'S');
      expect(expected.completion.values).toEqual(['Sales', 'Support']);
      expect((await ask(client, 'completable-prompt', 'S')).completion).toEqual(expected.completion);
      expect((await ask(client, 'everything.completable-prompt', 'S')).completion).toEqual(expected.completion);
      const team = await ask(direct, 'completable-prompt', '', { department: 'Engineering' });
      expect((await ask(client, 'everything.completable-prompt', '', { department: 'Engineering' })).completion).toEqual(team.completion);
    });

    it("completes a template's variables and a prompt's enumerated argument as the upstream does", async () => {
      const ref = (uri: string) => ({ ref: { type: 'ref/resource' as const, uri }, argument: { name: 'resourceId', value: '7' } });
      const expected = await direct.complete(ref(TEXT_TEMPLATE));
      expect(expected.completion.values).toEqual(['7']);
      for (const uri of [TEXT_TEMPLATE, mapped(TEXT_TEMPLATE)])
        expect((await client.complete(ref(uri))).completion).toEqual(expected.completion);
      const type = (name: string) => ({ ref: { type: 'ref/prompt' as const, name }, argument: { name: 'resourceType', value: 'B' } });
      const types = await direct.complete(type('resource-prompt'));
      expect(types.completion.values).toEqual(['Blob']);
      for (const name of ['resource-prompt', 'everything.resource-prompt']) {
        expect((await client.complete(type(name))).completion).toEqual(types.completion);
      }
    });

    it.each<[string, Record<string, unknown>]>([
      ['get-tiny-image', {}],
      ['get-annotated-message', { messageType: 'error', includeImage: true }],
      ['get-annotated-message', { messageType: 'debug', includeImage: false }],
      ['get-resource-reference', { resourceType: 'Blob', resourceId: 3 }],
      ['get-resource-links', { count: 4 }],
      ['get-structured-content', { location: 'Chicago' }],
    ])('calls %s (images, annotations, embedded resources, links, structured content) with the same result', async (tool, args) => {
      const expected = fieldsOf(await direct.callTool({ name: tool, arguments: args }));
      for (const federated of [tool, `everything.${tool}`]) {
        expect(fieldsOf(await client.callTool({ name: federated, arguments: args }))).toEqual(expected);
      }
    });

    it('answers an unknown prompt and an unknown resource with the spec errors', async () => {
      await expect(client.getPrompt({ name: 'everything.no-such-prompt' })).rejects.toMatchObject({ code: -32602 });
      // Resource not found: the SDK answers it as -32602 with the URI in data (the 2026-07-28 spec's code).
      await expect(client.readResource({ uri: 'mcp-upstream://nobody/demo://x' })).rejects.toMatchObject({
        code: -32602,
        data: { uri: 'mcp-upstream://nobody/demo://x' },
      });
    });
  });

  it('shows a user without the upstream permission none of its prompts or resources, and refuses them', async () => {
    const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, user.token, 'modern');
    try {
      const prompts = (await client.listPrompts()).prompts.map((prompt) => prompt.name);
      // Only the stdio upstream's (tools:execute); the HTTP one needs executions:read too.
      expect(prompts.sort()).toEqual(directPrompts.map((prompt) => `everything.${prompt.name}`).sort());
      const resources = (await client.listResources()).resources.map((resource) => resource.uri);
      expect(resources.length).toBeGreaterThan(0);
      expect(resources.every((uri) => uri.startsWith('mcp-upstream://everything/'))).toBe(true);
      const templates = (await client.listResourceTemplates()).resourceTemplates.map((template) => template.uriTemplate);
      expect(templates.every((uri) => uri.startsWith('mcp-upstream://everything/'))).toBe(true);
      const refused = await client.getPrompt({ name: 'simple-prompt' }).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(ProtocolError);
      expect((refused as ProtocolError).code).toBe(-32602);
      const document = directResources.find((resource) => resource.uri.startsWith(DOCUMENT_PREFIX))!;
      await expect(client.readResource({ uri: document.uri })).rejects.toMatchObject({ code: -32602, data: { uri: document.uri } });
      await expect(
        client.complete({ ref: { type: 'ref/prompt', name: 'completable-prompt' }, argument: { name: 'department', value: 'S' } }),
      ).rejects.toMatchObject({
        code: -32602,
      });
      // Its own are served.
      expect((await client.getPrompt({ name: 'everything.simple-prompt' })).messages.length).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  });

  it('audits every prompts/get and resources/read and counts them in the metrics', async () => {
    const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, user.token, 'modern');
    try {
      await client.getPrompt({ name: 'everything.args-prompt', arguments: { city: 'Oslo' } });
      await client.readResource({ uri: mapped('demo://resource/dynamic/text/7') });
    } finally {
      await client.close();
    }
    const rows: Array<{ action: string; result: string; resource: string; user_id: string; details: any }> = await db.query(
      `SELECT action, result, resource, user_id, details FROM audit_logs WHERE user_id = $1 AND action IN ('prompt.get', 'resource.read') ORDER BY seq`,
      [user.userId],
    );
    expect(rows.map((row) => [row.action, row.resource, row.result])).toEqual(
      expect.arrayContaining([
        ['prompt.get', 'prompt:everything.args-prompt', 'success'],
        ['resource.read', `resource:${mapped('demo://resource/dynamic/text/7')}`, 'success'],
      ]),
    );
    expect(rows.find((row) => row.action === 'prompt.get')!.details).toMatchObject({ upstream: 'everything', contextId: null });
    const metrics = await http(t.baseUrl, 'GET', '/api/v1/metrics', { token: admin.token });
    const line = (kind: string) =>
      metrics.text
        .split('\n')
        .find((l: string) => l.startsWith(`upstream_feature_requests_total{kind="${kind}",upstream="everything",status="completed"}`));
    expect(Number(line('prompt')?.split(' ').pop())).toBeGreaterThanOrEqual(1);
    expect(Number(line('resource')?.split(' ').pop())).toBeGreaterThanOrEqual(1);
  });

  it('relays resource updates to the agent that subscribed, under its URI, and log messages at its level (2025 session)', async () => {
    const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, admin.token, 'legacy');
    const updates: string[] = [];
    const logs: LoggingMessageNotificationParams[] = [];
    client.setNotificationHandler('notifications/resources/updated', (notification) => {
      updates.push(notification.params.uri);
    });
    client.setNotificationHandler('notifications/message', (notification) => {
      logs.push(notification.params);
    });
    const uri = mapped('demo://resource/dynamic/text/1');
    try {
      await client.subscribeResource({ uri });
      await client.setLoggingLevel('warning');
      await client.callTool({ name: 'everything.toggle-subscriber-updates', arguments: {} });
      await client.callTool({ name: 'everything.toggle-simulated-logging', arguments: {} });
      await waitFor('a relayed resource update', async () => (updates.length > 0 ? true : undefined));
      expect(updates.every((updated) => updated === uri)).toBe(true);
      // server-everything logs at a random one of the eight levels every 5 s, so a message at warning or above takes
      // a random number of ticks: 4 ticks find none 2 % of the time, 10 ticks 0.006 %. The wait covers 10.
      await waitFor('a relayed log message', async () => (logs.length > 0 ? true : undefined), 50_000);
      const below = logs.filter((log) => ['debug', 'info', 'notice'].includes(log.level));
      expect(below).toEqual([]);
    } finally {
      await client.callTool({ name: 'everything.toggle-subscriber-updates', arguments: {} }).catch(() => undefined);
      await client.callTool({ name: 'everything.toggle-simulated-logging', arguments: {} }).catch(() => undefined);
      await client.close();
    }
  }, 90_000);
  it.each<[string, string, (uri: string) => string]>([
    ['stdio', 'everything.', mapped],
    ['Streamable HTTP', '', (uri) => uri],
  ])(
    'relays the %s upstream’s subscription notices, resource updates and log messages as it sends them directly (2025 session)',
    async (_transport, prefix, agentUri) => {
      const upstreamUri = 'demo://resource/dynamic/text/11';
      /** One client's subscription to the resource, from setting the level to the first update after toggling updates on. */
      const observe = async (c: Client, uri: string, tool: string) => {
        const logs: LoggingMessageNotificationParams[] = [];
        const updates: ResourceUpdatedNotificationParams[] = [];
        c.setNotificationHandler('notifications/message', (notification) => {
          logs.push(notification.params);
        });
        c.setNotificationHandler('notifications/resources/updated', (notification) => {
          updates.push(notification.params);
        });
        await c.setLoggingLevel('debug');
        await c.subscribeResource({ uri });
        const received = (verb: string) => logs.find((log) => typeof log.data === 'string' && log.data.startsWith(`Received ${verb}`));
        await waitFor(`the upstream's notice of the subscription (${uri})`, async () => received('Subscribe'));
        try {
          await c.callTool({ name: tool, arguments: {} });
          await waitFor(`an update of ${uri}`, async () => updates[0]);
        } finally {
          await c.callTool({ name: tool, arguments: {} }).catch(() => undefined);
        }
        await c.unsubscribeResource({ uri });
        await waitFor(`the upstream's notice of the unsubscription (${uri})`, async () => received('Unsubscribe'));
        return {
          subscribed: withoutSession(received('Subscribe')!),
          unsubscribed: withoutSession(received('Unsubscribe')!),
          update: updates[0],
        };
      };
      const own = new Client({ name: 'features-direct-subscriber', version: '1.0.0' });
      await own.connect(new StreamableHTTPClientTransport(new URL(remote.url)));
      const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, admin.token, 'legacy');
      try {
        const expected = await observe(own, upstreamUri, 'toggle-subscriber-updates');
        expect(expected.update).toEqual({ uri: upstreamUri });
        const actual = await observe(client, agentUri(upstreamUri), `${prefix}toggle-subscriber-updates`);
        // Log messages are relayed as sent (their text names the upstream's own URI); updates name the URI the agent subscribed to.
        expect(actual.subscribed).toEqual(expected.subscribed);
        expect(actual.unsubscribed).toEqual(expected.unsubscribed);
        expect(actual.update).toEqual({ ...expected.update, uri: agentUri(upstreamUri) });
      } finally {
        await client.close();
        await own.close();
      }
    },
  );

  describe('sampling and elicitation server-everything asks for during a call', () => {
    const agents = new Map<Era, Client>();
    const agentAsked: Asking = { asked: [] };
    const ownAsked: Asking = { asked: [] };
    let own: Client;

    beforeAll(async () => {
      for (const era of ['legacy', 'modern'] as const) {
        const agent = new Client(
          { name: `features-relay-${era}`, version: '1.0.0' },
          { capabilities: AGENT_CAPABILITIES, ...(era === 'modern' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {}) },
        );
        answerRequests(agent, agentAsked);
        await agent.connect(
          new StreamableHTTPClientTransport(new URL(`${t.baseUrl}/api/v1/mcp`), {
            requestInit: { headers: { authorization: `Bearer ${admin.token}` } },
          }),
        );
        agents.set(era, agent);
      }
      // server-everything offers these tools only to clients declaring the capabilities: a direct client that does.
      own = new Client({ name: 'features-direct-relay', version: '1.0.0' }, { capabilities: AGENT_CAPABILITIES });
      answerRequests(own, ownAsked);
      await own.connect(new StreamableHTTPClientTransport(new URL(remote.url)));
    });
    afterAll(async () => {
      for (const agent of agents.values()) await agent.close();
      await own?.close();
    });

    const CALLS: Array<[string, Record<string, unknown>]> = [
      ['trigger-sampling-request', { prompt: 'Write a haiku about gateways', maxTokens: 50 }],
      ['trigger-elicitation-request', {}],
      ['trigger-url-elicitation', { url: 'https://example.com/consent', elicitationId: 'elicitation-1', message: 'Consent, please' }],
    ];

    // server-everything speaks only the 2025 era, so it asks with a request in the middle of the call. A 2025-era
    // agent gets that request on its call; a 2026-07-28 agent gets it in an InputRequiredResult while the gateway
    // holds the upstream call open, and its SDK answers and retries: the upstream gets the agent's answer, the
    // agent the upstream's result.
    it.each((['legacy', 'modern'] as const).flatMap((era) => CALLS.map(([tool, args]) => [era, tool, args] as const)))(
      'a %s agent calling %s is asked what the upstream asks, and the tool answers as it does directly',
      async (era, tool, args) => {
        const before = ownAsked.asked.length;
        const expected = fieldsOf(await own.callTool({ name: tool, arguments: args }));
        const expectedAsks = ownAsked.asked.slice(before).map((ask) => {
          const params = withoutMeta(ask.params);
          // The 2026-07-28 revision has no elicitationId (nor the completion notice it keyed): its wire codec leaves it out.
          if (era === 'modern') delete params.elicitationId;
          return { method: ask.method, params };
        });
        expect(expectedAsks).toHaveLength(1);
        // Over Streamable HTTP (empty prefix) and over stdio (`everything.`).
        for (const federated of [tool, `everything.${tool}`]) {
          const start = agentAsked.asked.length;
          const actual = fieldsOf(await agents.get(era)!.callTool({ name: federated, arguments: args }));
          const asks = agentAsked.asked.slice(start).map((ask) => ({ method: ask.method, params: withoutMeta(ask.params) }));
          expect({ federated, asks }).toEqual({ federated, asks: expectedAsks });
          expect({ federated, result: actual }).toEqual({ federated, result: expected });
        }
      },
    );
  });

  it('shows on a context endpoint only the prompts, resources and templates that are its members', async () => {
    const document = directResources.find((resource) => resource.uri.startsWith(DOCUMENT_PREFIX))!;
    const other = directResources.find((resource) => resource.uri.startsWith(DOCUMENT_PREFIX) && resource.uri !== document.uri);
    const contextId = await createContext(t, admin, 'features-context', [
      'everything.echo',
      'everything.args-prompt',
      mapped(document.uri),
      mapped(TEXT_TEMPLATE),
    ]);
    const { client } = await connectHttp(`${t.baseUrl}/api/v1/contexts/${contextId}/mcp`, admin.token, 'modern');
    try {
      expect((await client.listPrompts()).prompts.map((prompt) => prompt.name)).toEqual(['everything.args-prompt']);
      expect((await client.listResources()).resources.map((resource) => resource.uri)).toEqual([mapped(document.uri)]);
      expect((await client.listResourceTemplates()).resourceTemplates.map((template) => template.uriTemplate)).toEqual([
        mapped(TEXT_TEMPLATE),
      ]);
      expect((await client.getPrompt({ name: 'everything.args-prompt', arguments: { city: 'Bergen' } })).messages.length).toBe(1);
      await expect(client.getPrompt({ name: 'everything.simple-prompt' })).rejects.toMatchObject({ code: -32602 });
      // A member template admits its expansions; a resource that is no member is not found.
      const expansion = await client.readResource({ uri: mapped('demo://resource/dynamic/text/2') });
      expect(expansion.contents.map((content) => content.uri)).toEqual([mapped('demo://resource/dynamic/text/2')]);
      if (other) await expect(client.readResource({ uri: mapped(other.uri) })).rejects.toMatchObject({ code: -32602 });
      await expect(client.readResource({ uri: document.uri })).rejects.toMatchObject({ code: -32602 });
    } finally {
      await client.close();
    }
    // Members are checked like tools: a name nothing offers is refused with the contract's 400.
    const refused = await http(t.baseUrl, 'POST', '/api/v1/contexts', {
      token: admin.token,
      body: { name: 'bad-members', tools: ['everything.no-such-prompt'] },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.details).toEqual([expect.objectContaining({ field: 'tools[0]', code: 'UNKNOWN_TOOL' })]);
    // ...and one the creator may not use with a 403 (plain users lack executions:read, which the HTTP upstream needs).
    const forbidden = await http(t.baseUrl, 'POST', '/api/v1/contexts', {
      token: user.token,
      body: { name: 'not-mine', tools: ['simple-prompt'] },
    });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.details).toEqual([expect.objectContaining({ field: 'tools[0]', code: 'TOOL_NOT_PERMITTED' })]);
  });

  it('serves the same prompts and resources over WebSocket', async () => {
    const url = `${t.baseUrl.replace('http://', 'ws://')}/api/v1/mcp/ws?ticket=${await ticketFor(t, user.token)}`;
    const client = new V1Client({ name: 'features-ws', version: '1.0.0' });
    await client.connect(new WebSocketClientTransport(new URL(url)));
    try {
      expect(client.getServerCapabilities()?.prompts).toBeDefined();
      const names = (await client.listPrompts()).prompts.map((prompt) => prompt.name).sort();
      expect(names).toEqual(directPrompts.map((prompt) => `everything.${prompt.name}`).sort());
      const expected = await direct.getPrompt({ name: 'args-prompt', arguments: { city: 'Tromsø' } });
      const actual = await client.getPrompt({ name: 'everything.args-prompt', arguments: { city: 'Tromsø' } });
      expect(actual.messages).toEqual(expected.messages);
      const document = directResources.find((resource) => resource.uri.startsWith(DOCUMENT_PREFIX))!;
      const read = await client.readResource({ uri: mapped(document.uri) });
      const want = await direct.readResource({ uri: document.uri });
      expect(read.contents).toEqual(want.contents.map((content) => ({ ...content, uri: mapped(content.uri) })));
    } finally {
      await client.close();
    }
  });
});
