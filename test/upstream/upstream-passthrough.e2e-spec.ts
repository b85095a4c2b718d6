import { Client, ProtocolError } from '@modelcontextprotocol/client';
import type { CallToolResult, Tool } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connectHttp, Era, initializeLegacy } from '../mcp/mcp-test-kit';
import { startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, execute, login, toolsEnv } from '../tools/tools-test-kit';
import { relayedMeta, SERVER_INFO_META, stdioUpstream, waitFor, writeUpstreamsFile } from './upstream-test-kit';

const CONTENT_UPSTREAM = join(__dirname, 'fixtures', 'content-upstream.cjs');
const RESULT_LIMIT = 65_536;

/** Tool name → arguments: every kind of result the fixture answers. */
const CALLS: Array<[string, Record<string, unknown>]> = [
  ['image', {}],
  ['audio', {}],
  ['embedded', {}],
  ['link', {}],
  ['mixed', {}],
  ['fail', {}],
  ['forecast', { city: 'Bergen' }],
  ['loose', {}],
];

type RawResult = { content: Array<Record<string, any>> } & Record<string, any>;

/** tools/call of `name` on a stdio server started for it, read off its stdout as it wrote it. */
async function rawStdioCall(script: string, name: string): Promise<RawResult> {
  const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'ignore'] });
  try {
    const lines = createInterface({ input: child.stdout! });
    const send = (message: unknown) => child.stdin!.write(`${JSON.stringify(message)}\n`);
    send({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    });
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: {} } });
    for await (const line of lines) {
      const message = JSON.parse(line);
      if (message.id === 1) return message.result;
    }
    throw new Error('the upstream closed without answering');
  } finally {
    child.kill();
  }
}

/** tools/call of `name` through the gateway with fetch (no SDK client), in either era; the JSON-RPC result as it arrived. */
async function rawGatewayCall(url: string, token: string, era: Era, name: string): Promise<RawResult> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    authorization: `Bearer ${token}`,
  };
  let params: Record<string, unknown> = { name, arguments: {} };
  if (era === 'modern') {
    Object.assign(headers, { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': name });
    params = {
      ...params,
      _meta: {
        'io.modelcontextprotocol/protocolVersion': '2026-07-28',
        'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
        'io.modelcontextprotocol/clientCapabilities': {},
      },
    };
  } else {
    Object.assign(headers, { 'mcp-session-id': await initializeLegacy(url, token), 'mcp-protocol-version': '2025-11-25' });
  }
  const response = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params }),
  });
  expect(response.status).toBe(200);
  const text = await response.text();
  // A JSON body, or an event stream whose data lines carry JSON-RPC messages (the answer among them).
  const messages = response.headers.get('content-type')!.startsWith('text/event-stream')
    ? text
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => JSON.parse(line.slice(6)))
    : [JSON.parse(text)];
  const answer = messages.find((message) => message.id === 9);
  expect(answer.error).toBeUndefined();
  return answer.result;
}

/** The four fields of a tools/call result, for a field-by-field comparison. */
function fieldsOf(result: CallToolResult): Record<string, unknown> {
  return { content: result.content, structuredContent: result.structuredContent, isError: result.isError, _meta: result._meta };
}

/**
 * Transparency of federated tool results and definitions: our own upstream (official SDK,
 * test/upstream/fixtures/content-upstream.cjs) answers image, audio, embedded resources,
 * resource links, mixed content, isError, structured content with and without an output schema
 * and JSON-RPC errors. The same server, asked directly by an official SDK client, is the
 * expectation: MCP agents on either protocol era get its answers field by field, REST gets the
 * same result in `result`. The result rendering does not touch the database: one kind is enough.
 */
describe('Federated results and definitions pass through unchanged', () => {
  let t: TestApp;
  let admin: Caller;
  let direct: Client;
  let directTools: Tool[];

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smcp-passthrough-'));
    const file = writeUpstreamsFile(dir, [stdioUpstream('content', CONTENT_UPSTREAM, [])]);
    t = await startTestApp('postgres', {
      env: toolsEnv({ MCP_UPSTREAMS_FILE: file, MCP_UPSTREAM_RESULT_MAX_BYTES: String(RESULT_LIMIT) }),
    });
    admin = await login(t, ADMIN_EMAIL);
    direct = new Client({ name: 'passthrough-direct', version: '1.0.0' });
    await direct.connect(new StdioClientTransport({ command: process.execPath, args: [CONTENT_UPSTREAM] }));
    directTools = (await direct.listTools()).tools;
    await waitFor("the upstream's tools in the catalogue", async () => {
      const res = await execute(t, admin, 'content.loose', { parameters: {} });
      return res.status === 200;
    });
  });

  afterAll(async () => {
    await direct?.close();
    await t?.close();
  });

  describe.each<Era>(['modern', 'legacy'])('over /api/v1/mcp (%s era)', (era) => {
    let client: Client;
    beforeAll(async () => {
      ({ client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, admin.token, era));
    });
    afterAll(async () => {
      await client?.close();
    });

    it('lists each tool as the upstream defines it: title, description, output schema only when it has one, every annotation, icons, _meta', async () => {
      const listed = (await client.listTools()).tools.filter((tool) => tool.name.startsWith('content.'));
      expect(listed.map((tool) => tool.name).sort()).toEqual(directTools.map((tool) => `content.${tool.name}`).sort());
      for (const upstream of directTools) {
        const view = listed.find((tool) => tool.name === `content.${upstream.name}`)!;
        expect(view).toEqual({ ...upstream, name: `content.${upstream.name}` });
      }
      expect(listed.find((tool) => tool.name === 'content.loose')!.outputSchema).toBeUndefined();
      expect(listed.find((tool) => tool.name === 'content.image')!.annotations).toEqual({
        title: 'Pixel (annotation title)',
        readOnlyHint: true,
        destructiveHint: false,
        idempotentHint: true,
        openWorldHint: false,
      });
    });

    it.each(CALLS)('relays %s exactly as the upstream answers it', async (name, args) => {
      const expected = fieldsOf((await direct.callTool({ name, arguments: args })) as CallToolResult);
      const actual = fieldsOf((await client.callTool({ name: `content.${name}`, arguments: args })) as CallToolResult);
      expect(actual.content).toEqual(expected.content);
      expect(actual.structuredContent).toEqual(expected.structuredContent);
      expect(actual.isError).toEqual(expected.isError);
      // The upstream's _meta as it sent it; on 2026-07-28 the gateway adds its own serverInfo (it is the server of that hop).
      expect(relayedMeta(actual._meta as Record<string, unknown>)).toEqual(relayedMeta(expected._meta as Record<string, unknown>));
      if (era === 'modern') expect((actual._meta as Record<string, any>)[SERVER_INFO_META].name).toBe('secure-mcp-server');
      else expect((actual._meta as Record<string, unknown> | undefined)?.[SERVER_INFO_META]).toBeUndefined();
    });

    it.each([['needs-sampling'], ['picky']])(
      "relays the upstream's JSON-RPC error of %s as that error (code, message, data)",
      async (name) => {
        const expected = await direct.callTool({ name, arguments: {} }).then(
          () => undefined,
          (error: unknown) => error as ProtocolError,
        );
        const actual = await client.callTool({ name: `content.${name}`, arguments: {} }).then(
          () => undefined,
          (error: unknown) => error as ProtocolError,
        );
        expect(expected).toBeInstanceOf(ProtocolError);
        expect(actual).toBeInstanceOf(ProtocolError);
        expect(actual!.code).toBe(expected!.code);
        expect(actual!.message).toBe(expected!.message);
        expect(actual!.data).toEqual(expected!.data);
      },
    );

    it('relays fields no protocol revision defines inside content blocks as the upstream sent them', async () => {
      // What the agent's SDK client would drop is checked on the wire: the raw answer of each side.
      const expected = await rawStdioCall(CONTENT_UPSTREAM, 'extended');
      const actual = await rawGatewayCall(`${t.baseUrl}/api/v1/mcp`, admin.token, era, 'content.extended');
      expect(actual.content).toEqual(expected.content);
      expect(actual.content[0]['x-vendor']).toEqual({ rank: 3, tags: ['a', 'b'] });
      expect(actual.content[2].resource['x-vendor']).toBe('inner');
    });

    it("keeps its own refusals its own: a parameter the input schema refuses is the gateway's VALIDATION_ERROR", async () => {
      const result = (await client.callTool({ name: 'content.forecast', arguments: { city: 42 } })) as CallToolResult;
      expect(result.isError).toBe(true);
      expect(result.content).toHaveLength(1);
      expect(result.content[0]).toMatchObject({ type: 'text' });
      expect((result.content[0] as { text: string }).text.split(':')[0]).toBe('VALIDATION_ERROR');
    });

    it('fails a result over MCP_UPSTREAM_RESULT_MAX_BYTES with RESULT_TOO_LARGE instead of truncating it', async () => {
      const small = (await client.callTool({ name: 'content.big', arguments: { bytes: 1000 } })) as CallToolResult;
      expect(small.content).toEqual([{ type: 'text', text: 'x'.repeat(1000) }]);
      const big = (await client.callTool({ name: 'content.big', arguments: { bytes: RESULT_LIMIT + 1 } })) as CallToolResult;
      expect(big.isError).toBe(true);
      const text = (big.content[0] as { text: string }).text;
      expect(text.split(':')[0]).toBe('RESULT_TOO_LARGE');
      expect(text).toContain(`limit of ${RESULT_LIMIT} bytes (MCP_UPSTREAM_RESULT_MAX_BYTES)`);
      expect(text).not.toContain('xxxx');
    });
  });

  describe('over REST POST /tools/{id}/execute', () => {
    it.each(CALLS.filter(([name]) => name !== 'fail'))("returns %s's result, content blocks included, as `result`", async (name, args) => {
      const expected = fieldsOf((await direct.callTool({ name, arguments: args })) as CallToolResult);
      const res = await execute(t, admin, `content.${name}`, { parameters: args });
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('completed');
      expect(res.body.error).toBeUndefined();
      expect(res.body.result.content).toEqual(expected.content);
      expect(res.body.result.structuredContent).toEqual(expected.structuredContent);
      expect(res.body.result.isError).toEqual(expected.isError);
      expect(res.body.result._meta).toEqual(expected._meta);
    });

    it("reports an isError result as failed, with the upstream's words and its result kept", async () => {
      const expected = fieldsOf((await direct.callTool({ name: 'fail', arguments: {} })) as CallToolResult);
      const res = await execute(t, admin, 'content.fail', { parameters: {} });
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('failed');
      expect(res.body.error).toEqual({ code: 'UPSTREAM_ERROR', message: 'the fixture failed on purpose' });
      expect(res.body.result).toEqual(expected);
    });

    it('reports an upstream JSON-RPC error as failed with its code in the message', async () => {
      const res = await execute(t, admin, 'content.needs-sampling', { parameters: {} });
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('failed');
      expect(res.body.result).toBeNull();
      expect(res.body.error.code).toBe('UPSTREAM_ERROR');
      expect(res.body.error.message).toBe(
        'Upstream content: the upstream answered error -32021: Missing required client capability: sampling',
      );
    });

    it('fails a result over the limit with RESULT_TOO_LARGE', async () => {
      const res = await execute(t, admin, 'content.big', { parameters: { bytes: RESULT_LIMIT + 1 } });
      expect(res.body.status).toBe('failed');
      expect(res.body.result).toBeNull();
      expect(res.body.error.code).toBe('RESULT_TOO_LARGE');
    });
  });
});
