import { Client, ProtocolError } from '@modelcontextprotocol/client';
import type { CallToolResult, Tool } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectHttp, Era } from '../mcp/mcp-test-kit';
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
