import type { Client, GetPromptResult, ReadResourceResult } from '@modelcontextprotocol/client';
import { load } from 'js-yaml';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { connectHttp, createApiKey, createContext } from '../mcp/mcp-test-kit';
import { expectError } from '../support/error-body';
import { http, HttpResult, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, login, signUp, toolsEnv } from '../tools/tools-test-kit';
import { EVERYTHING, relayedMeta, stdioUpstream, waitFor, withoutClock, writeUpstreamsFile } from './upstream-test-kit';

const PROMPT_UPSTREAM = join(__dirname, 'fixtures', 'prompt-upstream.cjs');
/** How the gateway names a prefixed upstream's URIs (see libs/tools/src/upstream/federated-names.ts). */
const mapped = (uri: string) => `mcp-upstream://everything/${uri}`;
const DOCUMENT_PREFIX = mapped('demo://resource/static/document/');
const TEXT_TEMPLATE = mapped('demo://resource/dynamic/text/{resourceId}');
const NOTE_TEMPLATE = 'mcp-upstream://notes/note://{id}';
/** Per user and prompt (or resource) per minute, for the `notes` upstream: REST and MCP draw on the same budget. */
const NOTES_LIMIT = 4;
const q = encodeURIComponent;

/**
 * An MCP result without what the gateway's MCP server adds as the hop (2026-07-28): its serverInfo in
 * `_meta` and the cache hints `cacheScope` / `ttlMs` of resources/read. The upstream here speaks the
 * 2025 era and sends neither; the legacy-era answer is compared with nothing taken out.
 */
function asAgentSees<T extends { _meta?: Record<string, unknown> }>(result: T): T {
  const { _meta, cacheScope: _scope, ttlMs: _ttl, ...rest } = result as T & { cacheScope?: unknown; ttlMs?: unknown };
  const meta = relayedMeta(_meta);
  return (meta ? { ...rest, _meta: meta } : rest) as unknown as T;
}

/**
 * The REST extension for federated prompts and resources (GET /prompts, GET /prompts/{name},
 * POST /prompts/{name}/render, GET /resources, GET /resources/templates, GET /resources/read):
 * what an MCP agent gets through the gateway, field by field, under the same permissions,
 * contexts, rate limits, audit and definition pinning. Upstreams: server-everything over stdio
 * (prefix `everything.`, for holders of executions:read too) and our prompt-upstream fixture
 * (`notes.`, a prompt and a template whose definitions change, a low rate limit).
 */
describe('Federated prompts and resources over REST (extension)', () => {
  let t: TestApp;
  let db: DataSource;
  let admin: Caller;
  let user: Caller;
  let mcp: Client;

  const get = (caller: Caller | string, path: string) =>
    http(t.baseUrl, 'GET', `/api/v1${path}`, { token: typeof caller === 'string' ? caller : caller.token });
  const render = (caller: Caller | string, name: string, body: unknown, query = '') =>
    http(t.baseUrl, 'POST', `/api/v1/prompts/${q(name)}/render${query}`, {
      token: typeof caller === 'string' ? caller : caller.token,
      body,
    });

  /** Every item of an MCP listing over every page. */
  async function mcpAll<T>(list: (cursor?: string) => Promise<{ items: T[]; nextCursor?: string }>): Promise<T[]> {
    const all: T[] = [];
    let cursor: string | undefined;
    do {
      const page = await list(cursor);
      all.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor);
    return all;
  }

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smcp-features-rest-'));
    const file = writeUpstreamsFile(dir, [
      stdioUpstream('everything', EVERYTHING, ['stdio'], { permissions: ['tools:execute', 'executions:read'] }),
      stdioUpstream('notes', PROMPT_UPSTREAM, [], { rateLimit: { requests: NOTES_LIMIT, window: '1m' } }),
    ]);
    t = await startTestApp('postgres', { env: toolsEnv({ MCP_UPSTREAMS_FILE: file }) });
    db = t.app.get(DataSource);
    admin = await login(t, ADMIN_EMAIL);
    user = await signUp(t, 'features-rest-user@example.com');
    await waitFor(
      'both upstreams connected',
      async () => {
        const res = await get(admin, '/prompts?limit=100');
        const names: string[] = res.status === 200 ? res.body.prompts.map((prompt: { name: string }) => prompt.name) : [];
        return names.includes('notes.brief') && names.includes('everything.simple-prompt') ? true : undefined;
      },
      120_000,
      500,
    );
    ({ client: mcp } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, admin.token, 'modern'));
  }, 180_000);

  afterAll(async () => {
    await mcp?.close();
    await t?.close();
  });

  it('lists prompts, resources and templates exactly as MCP lists them, paged like GET /tools', async () => {
    const prompts = await mcpAll((cursor) => mcp.listPrompts(cursor ? { cursor } : {}).then((r) => ({ ...r, items: r.prompts })));
    const resources = await mcpAll((cursor) => mcp.listResources(cursor ? { cursor } : {}).then((r) => ({ ...r, items: r.resources })));
    const templates = await mcpAll((cursor) =>
      mcp.listResourceTemplates(cursor ? { cursor } : {}).then((r) => ({ ...r, items: r.resourceTemplates })),
    );
    const restPrompts = await get(admin, '/prompts?limit=100');
    expect(restPrompts.status).toBe(200);
    expect(restPrompts.body.prompts).toEqual(prompts);
    expect(restPrompts.body.pagination).toEqual({ page: 1, limit: 100, total: prompts.length, pages: 1 });
    const restResources = await get(admin, '/resources?limit=100');
    expect(restResources.body.resources).toEqual(resources);
    expect(restResources.body.pagination.total).toBe(resources.length);
    const restTemplates = await get(admin, '/resources/templates?limit=100');
    expect(restTemplates.body.resourceTemplates).toEqual(templates);
    expect(restTemplates.body.resourceTemplates.map((t: { uriTemplate: string }) => t.uriTemplate)).toEqual(
      expect.arrayContaining([TEXT_TEMPLATE, NOTE_TEMPLATE]),
    );

    // Pages: the sorted listing cut like GET /tools (page, limit, total, pages).
    const second = await get(admin, '/prompts?limit=2&page=2');
    expect(second.body.prompts).toEqual(prompts.slice(2, 4));
    expect(second.body.pagination).toEqual({ page: 2, limit: 2, total: prompts.length, pages: Math.ceil(prompts.length / 2) });
  });

  it('gets one prompt definition as MCP lists it; an unknown one is a 404 Error body', async () => {
    const listed = (await mcp.listPrompts()).prompts.find((prompt) => prompt.name === 'everything.args-prompt');
    const res = await get(admin, `/prompts/${q('everything.args-prompt')}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(listed);
    const unknown = await get(admin, '/prompts/everything.no-such-prompt');
    expectError(unknown, 404, 'NOT_FOUND');
  });

  it.each<[string, Record<string, string> | undefined]>([
    ['everything.simple-prompt', undefined],
    ['everything.args-prompt', { city: 'Bergen', state: 'Vestland' }],
    ['everything.completable-prompt', { department: 'Sales', name: 'Eve' }],
    ['everything.resource-prompt', { resourceType: 'Blob', resourceId: '4' }],
  ])('renders %s as MCP prompts/get answers it, field by field', async (name, args) => {
    const expected: GetPromptResult = await mcp.getPrompt(args ? { name, arguments: args } : { name });
    // No arguments: no body at all, as a Swagger user might send it.
    const res = await render(admin, name, args ? { arguments: args } : undefined);
    expect(res.status).toBe(200);
    // Every field, the messages' content blocks included; the gateway's own serverInfo in _meta is the MCP hop's.
    expect(withoutClock(res.body)).toEqual(withoutClock(asAgentSees(expected)));
  });

  it('reads listed resources and template expansions as MCP resources/read answers them, field by field', async () => {
    const documents = (await get(admin, '/resources?limit=100')).body.resources.filter((r: { uri: string }) =>
      r.uri.startsWith(DOCUMENT_PREFIX),
    );
    expect(documents.length).toBeGreaterThan(0);
    const { client: legacy } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, admin.token, 'legacy');
    try {
      for (const uri of [
        documents[0].uri,
        mapped('demo://resource/dynamic/text/3'),
        mapped('demo://resource/dynamic/blob/2'),
        'mcp-upstream://notes/note://7',
      ]) {
        const res = await get(admin, `/resources/read?uri=${q(uri)}`);
        expect({ uri, status: res.status }).toEqual({ uri, status: 200 });
        const modern: ReadResourceResult = await mcp.readResource({ uri });
        expect(withoutClock(res.body)).toEqual(withoutClock(asAgentSees(modern)));
        expect(withoutClock(res.body)).toEqual(withoutClock(await legacy.readResource({ uri })));
      }
    } finally {
      await legacy.close();
    }
  });

  it('answers a read or a render only with its audit record: when the record cannot be written, REST and MCP fail', async () => {
    const reader = await signUp(t, 'features-rest-unaudited@example.com');
    const uri = 'mcp-upstream://notes/note://5';
    const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, reader.token, 'modern');
    await db.query(`CREATE FUNCTION test_refuse_read_audit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.action IN ('resource.read', 'prompt.get') THEN RAISE EXCEPTION 'audit store refuses reads'; END IF;
        RETURN NEW;
      END $$`);
    await db.query(
      `CREATE TRIGGER test_refuse_read_audit BEFORE INSERT ON audit_logs FOR EACH ROW EXECUTE FUNCTION test_refuse_read_audit()`,
    );
    try {
      const read = await get(reader, `/resources/read?uri=${q(uri)}`);
      expectError(read, 500, 'INTERNAL_ERROR');
      expect(read.body.contents).toBeUndefined();
      expectError(await render(reader, 'notes.brief', { arguments: { topic: 'unaudited' } }), 500, 'INTERNAL_ERROR');
      await expect(client.readResource({ uri })).rejects.toThrow();
    } finally {
      await db.query('DROP TRIGGER test_refuse_read_audit ON audit_logs');
      await db.query('DROP FUNCTION test_refuse_read_audit()');
      await client.close();
    }
    const again = await get(reader, `/resources/read?uri=${q(uri)}`);
    expect(again.status).toBe(200);
    expect(again.body.contents.length).toBeGreaterThan(0);
    const rows: Array<{ action: string; result: string }> = await db.query(
      `SELECT action, result FROM audit_logs WHERE user_id = $1 AND action IN ('prompt.get', 'resource.read') ORDER BY seq`,
      [reader.userId],
    );
    expect(rows).toEqual([{ action: 'resource.read', result: 'success' }]);
  });

  it('refuses bad input with 400 and one detail per field', async () => {
    const missing = await render(admin, 'everything.args-prompt', { arguments: { state: 'Vestland' } });
    expectError(missing, 400, 'VALIDATION_ERROR');
    expect(missing.body.details).toEqual([expect.objectContaining({ field: 'arguments.city', code: 'isDefined' })]);
    const wrong = await render(admin, 'everything.args-prompt', { arguments: { city: 7, country: 'NO' } });
    expectError(wrong, 400, 'VALIDATION_ERROR');
    expect(wrong.body.details).toEqual([
      expect.objectContaining({ field: 'arguments.city', code: 'isString' }),
      expect.objectContaining({ field: 'arguments.country', code: 'unknownArgument' }),
    ]);
    const notObject = await render(admin, 'everything.args-prompt', { arguments: ['Bergen'] });
    expectError(notObject, 400, 'VALIDATION_ERROR');
    expect(notObject.body.details.map((d: { field: string }) => d.field)).toEqual(['arguments']);
    const extra = await render(admin, 'everything.simple-prompt', { args: {} });
    expectError(extra, 400, 'VALIDATION_ERROR');
    expect(extra.body.details).toEqual([expect.objectContaining({ field: 'args', code: 'unknownProperty' })]);

    const noUri = await get(admin, '/resources/read');
    expectError(noUri, 400, 'VALIDATION_ERROR');
    expect(noUri.body.details.map((d: { field: string }) => d.field)).toContain('uri');
    const tooMany = await get(admin, '/resources?limit=500');
    expectError(tooMany, 400, 'VALIDATION_ERROR');
    expect(tooMany.body.details.map((d: { field: string }) => d.field)).toEqual(['limit']);

    // No such resource: 404 naming the field; the upstream's own error for arguments it refuses: its code and words.
    const unknown = await get(admin, `/resources/read?uri=${q('mcp-upstream://nobody/demo://x')}`);
    expectError(unknown, 404, 'NOT_FOUND');
    expect(unknown.body.details).toEqual([expect.objectContaining({ field: 'uri', code: 'RESOURCE_NOT_FOUND' })]);
    // server-everything's resource-prompt throws on an unknown resourceType: JSON-RPC -32603 with its message, over MCP as over REST.
    const bad = { resourceType: 'Video', resourceId: '1' };
    const viaMcp = await mcp.getPrompt({ name: 'everything.resource-prompt', arguments: bad }).then(
      () => undefined,
      (error: { code: number; message: string }) => error,
    );
    expect(viaMcp?.code).toBe(-32603);
    const refused = await render(admin, 'everything.resource-prompt', { arguments: bad });
    expectError(refused, 502, 'UPSTREAM_ERROR');
    expect(refused.body.details).toEqual([
      { field: 'arguments', code: 'JSONRPC_-32603', message: expect.stringContaining('Invalid resourceType') },
    ]);
  });

  it('shows a caller without the permissions none of it: 403 without tools:execute, nothing of an upstream it may not use', async () => {
    // A plain user lacks executions:read, which the everything upstream needs: only notes is visible.
    const prompts = await get(user, '/prompts?limit=100');
    expect(prompts.status).toBe(200);
    expect(prompts.body.prompts.map((p: { name: string }) => p.name)).toEqual(['notes.brief']);
    const resources = await get(user, '/resources?limit=100');
    expect(resources.body.resources).toEqual([]);
    const templates = await get(user, '/resources/templates?limit=100');
    expect(templates.body.resourceTemplates.map((tpl: { uriTemplate: string }) => tpl.uriTemplate)).toEqual([NOTE_TEMPLATE]);
    expectError(await get(user, `/prompts/${q('everything.simple-prompt')}`), 404, 'NOT_FOUND');
    expectError(await render(user, 'everything.simple-prompt', {}), 404, 'NOT_FOUND');
    expectError(await get(user, `/resources/read?uri=${q(mapped('demo://resource/dynamic/text/1'))}`), 404, 'NOT_FOUND');

    // An API key without tools:execute: the routes refuse it outright.
    const { key } = await createApiKey(t, user, { name: 'read-only', permissions: ['tools:read'] });
    for (const res of [
      await get(key, '/prompts'),
      await get(key, '/prompts/notes.brief'),
      await render(key, 'notes.brief', { arguments: { topic: 'x' } }),
      await get(key, '/resources'),
      await get(key, '/resources/templates'),
      await get(key, `/resources/read?uri=${q('mcp-upstream://notes/note://1')}`),
    ]) {
      expectError(res, 403, 'FORBIDDEN');
    }
  });

  it("shows a context-bound API key only its context's members, as its MCP endpoint does", async () => {
    const document = (await get(admin, '/resources?limit=100')).body.resources.find((r: { uri: string }) =>
      r.uri.startsWith(DOCUMENT_PREFIX),
    );
    const contextId = await createContext(t, admin, 'rest-features', ['everything.args-prompt', document.uri, TEXT_TEMPLATE]);
    const { key } = await createApiKey(t, admin, { name: 'rest-features-key', contextId });
    const { client: inContext } = await connectHttp(`${t.baseUrl}/api/v1/contexts/${contextId}/mcp`, admin.token, 'modern');
    try {
      // The bound key, and the administrator asking for the context: the same view.
      for (const [token, query] of [
        [key, ''],
        [admin.token, `?contextId=${contextId}`],
      ]) {
        const amp = query ? `&${query.slice(1)}` : '';
        const prompts = await get(token, `/prompts?limit=100${amp}`);
        expect(prompts.body.prompts).toEqual((await inContext.listPrompts()).prompts);
        expect(prompts.body.prompts.map((p: { name: string }) => p.name)).toEqual(['everything.args-prompt']);
        const resources = await get(token, `/resources?limit=100${amp}`);
        expect(resources.body.resources).toEqual((await inContext.listResources()).resources);
        const templates = await get(token, `/resources/templates?limit=100${amp}`);
        expect(templates.body.resourceTemplates.map((tpl: { uriTemplate: string }) => tpl.uriTemplate)).toEqual([TEXT_TEMPLATE]);

        const rendered = await render(token, 'everything.args-prompt', { arguments: { city: 'Oslo' } }, query);
        expect(rendered.status).toBe(200);
        expectError(await render(token, 'everything.simple-prompt', {}, query), 404, 'NOT_FOUND');
        expectError(await render(token, 'notes.brief', { arguments: { topic: 'x' } }, query), 404, 'NOT_FOUND');
        expectError(await get(token, `/prompts/${q('everything.simple-prompt')}${query}`), 404, 'NOT_FOUND');
        const expansion = await get(token, `/resources/read?uri=${q(mapped('demo://resource/dynamic/text/2'))}${amp}`);
        expect(expansion.body.contents.map((c: { uri: string }) => c.uri)).toEqual([mapped('demo://resource/dynamic/text/2')]);
        expectError(await get(token, `/resources/read?uri=${q('mcp-upstream://notes/note://1')}${amp}`), 404, 'NOT_FOUND');
      }
      // The bound key cannot step into another context.
      const other = await createContext(t, admin, 'rest-features-other', ['notes.brief']);
      expectError(await get(key, `/prompts?contextId=${other}`), 403, 'FORBIDDEN');
      // A context nobody has, or someone else's: 404, as for the context endpoint.
      expectError(await get(admin, '/resources?contextId=ctx_nope'), 404, 'NOT_FOUND');
      expectError(await render(user, 'notes.brief', { arguments: { topic: 'x' } }, `?contextId=${other}`), 404, 'NOT_FOUND');
    } finally {
      await inContext.close();
    }
  });

  it('audits REST renders and reads like MCP ones, and counts them against the same rate limit', async () => {
    const rendered = await render(user, 'notes.brief', { arguments: { topic: 'audit' } });
    expect(rendered.status).toBe(200);
    expect(rendered.body.messages).toEqual([{ role: 'user', content: { type: 'text', text: 'Brief me on audit' } }]);
    const read = await get(user, `/resources/read?uri=${q('mcp-upstream://notes/note://3')}`);
    expect(read.status).toBe(200);
    const rows: Array<{ action: string; resource: string; result: string; details: any }> = await db.query(
      `SELECT action, resource, result, details FROM audit_logs WHERE user_id = $1 AND action IN ('prompt.get', 'resource.read') ORDER BY seq`,
      [user.userId],
    );
    expect(rows.map((row) => [row.action, row.resource, row.result])).toEqual([
      ['prompt.get', 'prompt:notes.brief', 'success'],
      ['resource.read', 'resource:mcp-upstream://notes/note://3', 'success'],
    ]);
    expect(rows[0].details).toMatchObject({ upstream: 'notes', contextId: null });

    // NOTES_LIMIT renders of notes.brief per minute, REST and MCP together: 1 above, 2 more by REST, 1 by MCP, then refused.
    expect((await render(user, 'notes.brief', { arguments: { topic: 'a' } })).status).toBe(200);
    expect((await render(user, 'notes.brief', { arguments: { topic: 'b' } })).status).toBe(200);
    const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, user.token, 'modern');
    try {
      await client.getPrompt({ name: 'notes.brief', arguments: { topic: 'c' } });
    } finally {
      await client.close();
    }
    const limited: HttpResult = await render(user, 'notes.brief', { arguments: { topic: 'd' } });
    expectError(limited, 429, 'RATE_LIMIT_EXCEEDED');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.headers.get('x-ratelimit-limit')).toBe(String(NOTES_LIMIT));
    const refusedRows: Array<{ result: string }> = await db.query(
      `SELECT result FROM audit_logs WHERE user_id = $1 AND action = 'prompt.get' ORDER BY seq DESC LIMIT 1`,
      [user.userId],
    );
    expect(refusedRows).toEqual([{ result: 'failure' }]);
  });

  it('refuses a prompt and reads of a template whose definitions changed, until an administrator approves them', async () => {
    await mcp.callTool({ name: 'notes.mutate', arguments: { description: 'Writes a brief, and more' } });
    await mcp.callTool({ name: 'notes.mutate', arguments: { description: 'A note, changed', template: true } });
    await waitFor(
      'the changed prompt and template held',
      async () => {
        const prompts = (await get(admin, '/prompts?limit=100')).body.prompts.map((p: { name: string }) => p.name);
        const templates = (await get(admin, '/resources/templates?limit=100')).body.resourceTemplates.map(
          (tpl: { uriTemplate: string }) => tpl.uriTemplate,
        );
        return !prompts.includes('notes.brief') && !templates.includes(NOTE_TEMPLATE) ? true : undefined;
      },
      60_000,
      200,
    );
    const held = await render(admin, 'notes.brief', { arguments: { topic: 'pins' } });
    expectError(held, 403, 'DEFINITION_NOT_APPROVED');
    expectError(await get(admin, '/prompts/notes.brief'), 404, 'NOT_FOUND');
    expectError(await get(admin, `/resources/read?uri=${q('mcp-upstream://notes/note://5')}`), 404, 'NOT_FOUND');

    for (const pinKey of ['prompt/notes.brief', `template/${NOTE_TEMPLATE}`]) {
      const pin = await http(t.baseUrl, 'GET', `/api/v1/admin/tools/${q(pinKey)}/approval`, { token: admin.token });
      expect(pin.body).toMatchObject({ status: 'pending', changedFields: ['description'] });
      const approved = await http(t.baseUrl, 'POST', `/api/v1/admin/tools/${q(pinKey)}/approve`, {
        token: admin.token,
        body: { definitionHash: pin.body.offeredHash },
      });
      expect(approved.status).toBe(200);
    }
    const after = await render(admin, 'notes.brief', { arguments: { topic: 'pins' } });
    expect(after.status).toBe(200);
    expect(after.body.messages).toEqual([{ role: 'user', content: { type: 'text', text: 'Brief me on pins' } }]);
    expect((await get(admin, '/prompts/notes.brief')).body.description).toBe('Writes a brief, and more');
    const note = await get(admin, `/resources/read?uri=${q('mcp-upstream://notes/note://5')}`);
    expect(note.body.contents).toEqual([{ uri: 'mcp-upstream://notes/note://5', mimeType: 'text/plain', text: 'Note note://5' }]);
  });

  it('is in the Swagger document as extensions, under Prompts and Resources', async () => {
    const doc = (await http(t.baseUrl, 'GET', '/api/docs-json')).body;
    const contract = load(readFileSync(join(__dirname, '..', 'contract', 'openapi.yaml'), 'utf8')) as { paths: Record<string, unknown> };
    expect(Object.keys(contract.paths).length).toBeGreaterThan(10);
    const operations: Array<[string, string]> = [
      ['/prompts', 'get'],
      ['/prompts/{name}', 'get'],
      ['/prompts/{name}/render', 'post'],
      ['/resources', 'get'],
      ['/resources/templates', 'get'],
      ['/resources/read', 'get'],
    ];
    for (const [path, method] of operations) {
      const operation = doc.paths[path]?.[method];
      expect({ path, summary: operation?.summary }).toEqual({ path, summary: expect.stringContaining('(extension)') });
      expect(operation.security).toEqual([{ BearerAuth: [] }]);
      // Extensions: never part of the contract.
      expect(contract.paths[path]).toBeUndefined();
    }
  });
});
