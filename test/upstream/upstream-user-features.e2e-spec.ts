import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, ProtocolError, StreamableHTTPClientTransport, UrlElicitationRequiredError } from '@modelcontextprotocol/client';
import type { GetPromptResult, ReadResourceResult } from '@modelcontextprotocol/client';
import { DataSource } from 'typeorm';
import { connectHttp } from '../mcp/mcp-test-kit';
import { http, startTestApp, TestApp } from '../support/test-app';
import { Caller, execute, signUp, toolsEnv } from '../tools/tools-test-kit';
import { ReferenceUpstream, waitFor, writeUpstreamsFile } from './upstream-test-kit';
import { seenByUpstream, startWhoami, whoamiEntry } from './whoami-kit';

/** The gateway's own credential: the catalogue connection's, which must never answer a user's prompt or resource. */
const LISTING_TOKEN = 'gateway-listing-token-features-01';
const SECRETS = { ann: 'ann-pat-features-4c1d', ben: 'ben-pat-features-9e27', cal: 'cal-pat-not-accepted-upstream' };
const CONNECT_URL = 'https://portal.example.com/connect/whofeat';
const ME = 'mcp-upstream://whofeat/whoami://me';
const LABELLED = 'mcp-upstream://whofeat/whoami://label/quarterly';

const entry = whoamiEntry('UPSTREAM_WHOFEAT_LISTING');

const textOfPrompt = (result: GetPromptResult) => (result.messages[0].content as { text: string }).text;
const textOfResource = (result: ReadResourceResult) => (result.contents[0] as { text: string }).text;

async function failureOf(work: Promise<unknown>): Promise<unknown> {
  return work.then(
    () => undefined,
    (caught: unknown) => caught,
  );
}

/**
 * Issue 17, part 2: the prompts, resources and resource templates of an upstream with per-user
 * `auth` are served over each caller's own connection (their own credential, their own upstream
 * session), in both protocol eras, with the credential rules of tool calls: a user without a
 * credential sees none of them and gets UPSTREAM_CREDENTIAL_REQUIRED (or the URL elicitation)
 * when asking for one; the gateway's credential never answers for a user. The whoami upstream
 * names the bearer token in every prompt and resource it serves.
 */
describe('Per-user upstream credentials: prompts and resources', () => {
  let t: TestApp;
  let upstream: ReferenceUpstream;
  let db: DataSource;
  let ann: Caller;
  let ben: Caller;
  let cal: Caller;

  beforeAll(async () => {
    upstream = await startWhoami([LISTING_TOKEN, SECRETS.ann, SECRETS.ben]);
    const dir = mkdtempSync(join(tmpdir(), 'smcp-user-features-'));
    const file = writeUpstreamsFile(dir, [
      entry('whofeat', upstream.url, { auth: { mode: 'user-secret', connectUrl: CONNECT_URL } }),
      entry('whofeatlegacy', upstream.url, { auth: 'user-secret', protocol: 'legacy' }),
    ]);
    t = await startTestApp('postgres', { env: toolsEnv({ MCP_UPSTREAMS_FILE: file, UPSTREAM_WHOFEAT_LISTING: LISTING_TOKEN }) });
    db = t.app.get(DataSource);
    [ann, ben, cal] = await Promise.all([
      signUp(t, 'ann.features@example.com'),
      signUp(t, 'ben.features@example.com'),
      signUp(t, 'cal.features@example.com'),
    ]);
    for (const [caller, secret] of [
      [ann, SECRETS.ann],
      [ben, SECRETS.ben],
    ] as const) {
      for (const name of ['whofeat', 'whofeatlegacy']) {
        const res = await http(t.baseUrl, 'PUT', `/api/v1/upstream-connections/${name}`, { token: caller.token, body: { secret } });
        expect(res.status).toBe(200);
      }
    }
    await waitFor('the upstreams connected', async () => {
      const [a, b] = await Promise.all([
        execute(t, ann, 'whofeat.whoami', { parameters: {} }),
        execute(t, ann, 'whofeatlegacy.whoami', { parameters: {} }),
      ]);
      return a.body?.status === 'completed' && b.body?.status === 'completed';
    });
  });

  afterAll(async () => {
    await t?.close();
    upstream?.child.kill('SIGTERM');
  });

  it.each([
    ['modern', 'whofeat'],
    ['legacy', 'whofeatlegacy'],
  ] as const)(
    'over the %s era each user lists, gets and reads with their own credential, never the gateway one or another user one',
    async (era, name) => {
      const before = (await seenByUpstream(upstream)).length;
      const prefix = `mcp-upstream://${name}/`;
      for (const [caller, secret] of [
        [ann, SECRETS.ann],
        [ben, SECRETS.ben],
      ] as const) {
        const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, caller.token, era);
        try {
          expect((await client.listPrompts()).prompts.map((prompt) => prompt.name)).toEqual(['whofeat.whoami', 'whofeatlegacy.whoami']);
          expect((await client.listResources()).resources.map((resource) => resource.uri)).toEqual([
            'mcp-upstream://whofeat/whoami://me',
            'mcp-upstream://whofeatlegacy/whoami://me',
          ]);
          expect((await client.listResourceTemplates()).resourceTemplates.map((template) => template.uriTemplate)).toEqual([
            'mcp-upstream://whofeat/whoami://label/{label}',
            'mcp-upstream://whofeatlegacy/whoami://label/{label}',
          ]);
          expect(textOfPrompt(await client.getPrompt({ name: `${name}.whoami` }))).toBe(`prompt whoami: ${secret}`);
          const me = await client.readResource({ uri: `${prefix}whoami://me` });
          expect(me.contents[0].uri).toBe(`${prefix}whoami://me`);
          expect(textOfResource(me)).toBe(`resource whoami://me: ${secret}`);
          expect(textOfResource(await client.readResource({ uri: `${prefix}whoami://label/q3` }))).toBe(
            `resource whoami://label/q3: ${secret}`,
          );
        } finally {
          await client.close();
        }
      }
      expect((await seenByUpstream(upstream)).slice(before)).toEqual([
        SECRETS.ann,
        SECRETS.ann,
        SECRETS.ann,
        SECRETS.ben,
        SECRETS.ben,
        SECRETS.ben,
      ]);
    },
  );

  it('answers the same over REST (render and read), with the caller own credential', async () => {
    const rendered = await http(t.baseUrl, 'POST', '/api/v1/prompts/whofeat.whoami/render', { token: ben.token, body: {} });
    expect(rendered.status).toBe(200);
    expect(textOfPrompt(rendered.body)).toBe(`prompt whoami: ${SECRETS.ben}`);
    const read = await http(t.baseUrl, 'GET', `/api/v1/resources/read?uri=${encodeURIComponent(LABELLED)}`, { token: ann.token });
    expect(read.status).toBe(200);
    expect(textOfResource(read.body)).toBe(`resource whoami://label/quarterly: ${SECRETS.ann}`);
  });

  describe('a user without a credential of their own', () => {
    it('sees none of the upstream prompts or resources (the gateway credential lists nothing for them)', async () => {
      const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, cal.token, 'modern');
      try {
        expect((await client.listPrompts()).prompts).toEqual([]);
        expect((await client.listResources()).resources).toEqual([]);
        expect((await client.listResourceTemplates()).resourceTemplates).toEqual([]);
      } finally {
        await client.close();
      }
    });

    it('gets UPSTREAM_CREDENTIAL_REQUIRED over MCP for a prompt or resource of the upstream, audited with the user', async () => {
      const before = (await seenByUpstream(upstream)).length;
      const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, cal.token, 'modern');
      const message = `Upstream whofeat acts with your own credential and you have none stored: set it at ${CONNECT_URL} or with PUT /api/v1/upstream-connections/whofeat, then try again`;
      try {
        for (const failure of [
          await failureOf(client.getPrompt({ name: 'whofeat.whoami' })),
          await failureOf(client.readResource({ uri: ME })),
        ]) {
          expect(failure).toBeInstanceOf(ProtocolError);
          expect({ code: (failure as ProtocolError).code, data: (failure as ProtocolError).data }).toEqual({
            code: -32000,
            data: { error: 'UPSTREAM_CREDENTIAL_REQUIRED' },
          });
          expect((failure as ProtocolError).message).toBe(message);
        }
      } finally {
        await client.close();
      }
      expect((await seenByUpstream(upstream)).slice(before)).toEqual([]);
      const rows = await db.query(
        `SELECT action, resource, result, details FROM audit_logs WHERE user_id = $1 AND action IN ('prompt.get', 'resource.read') ORDER BY seq`,
        [cal.userId],
      );
      expect(rows.map((row: { action: string; resource: string; result: string }) => [row.action, row.resource, row.result])).toEqual([
        ['prompt.get', 'prompt:whofeat.whoami', 'failure'],
        ['resource.read', `resource:${ME}`, 'failure'],
      ]);
      expect(rows[0].details).toEqual({ upstream: 'whofeat', contextId: null, reason: message });
    });

    it('gets a URL-mode elicitation to the connect page when its SDK client declared URL elicitation', async () => {
      const client = new Client({ name: 'url-elicitation-agent', version: '1.0.0' }, { capabilities: { elicitation: { url: {} } } });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${t.baseUrl}/api/v1/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${cal.token}` } },
        }),
      );
      try {
        for (const failure of [
          await failureOf(client.getPrompt({ name: 'whofeat.whoami' })),
          await failureOf(client.readResource({ uri: LABELLED })),
        ]) {
          expect(failure).toBeInstanceOf(UrlElicitationRequiredError);
          const [elicitation] = (failure as UrlElicitationRequiredError).elicitations;
          expect({ mode: elicitation.mode, url: elicitation.url }).toEqual({ mode: 'url', url: CONNECT_URL });
        }
      } finally {
        await client.close();
      }
    });

    it('gets 403 UPSTREAM_CREDENTIAL_REQUIRED over REST', async () => {
      const rendered = await http(t.baseUrl, 'POST', '/api/v1/prompts/whofeatlegacy.whoami/render', { token: cal.token, body: {} });
      expect(rendered.status).toBe(403);
      expect(rendered.body.error).toBe('UPSTREAM_CREDENTIAL_REQUIRED');
      expect(rendered.body.message).toBe(
        'Upstream whofeatlegacy acts with your own credential and you have none stored: set it with PUT /api/v1/upstream-connections/whofeatlegacy, then try again',
      );
      const read = await http(t.baseUrl, 'GET', `/api/v1/resources/read?uri=${encodeURIComponent(ME)}`, { token: cal.token });
      expect(read.status).toBe(403);
      expect(read.body.error).toBe('UPSTREAM_CREDENTIAL_REQUIRED');
    });

    it('with a credential the upstream refuses, gets 403 UPSTREAM_CREDENTIAL_REJECTED, audited, not a 500', async () => {
      const secret = SECRETS.cal;
      expect((await http(t.baseUrl, 'PUT', '/api/v1/upstream-connections/whofeat', { token: cal.token, body: { secret } })).status).toBe(
        200,
      );
      const refused = await http(t.baseUrl, 'GET', `/api/v1/resources/read?uri=${encodeURIComponent(ME)}`, { token: cal.token });
      expect(refused.status).toBe(403);
      expect([refused.body.error, refused.body.message]).toEqual([
        'UPSTREAM_CREDENTIAL_REJECTED',
        'Upstream whofeat refused your credential (HTTP 401): replace it with PUT /api/v1/upstream-connections/whofeat, then try again',
      ]);
      const rejected = await db.query(`SELECT details FROM audit_logs WHERE action = 'upstream.credential.rejected' AND user_id = $1`, [
        cal.userId,
      ]);
      expect(rejected.map((row: { details: unknown }) => row.details)).toEqual([{ upstream: 'whofeat', status: 401 }]);
    });
  });

  it('keeps no plaintext secret in the database or the audit trail', async () => {
    const rows: Array<{ table: string; text: string }> = [
      ...(await db.query(`SELECT 'upstream_credentials' AS table, row_to_json(c)::text AS text FROM upstream_credentials c`)),
      ...(await db.query(`SELECT 'audit_logs' AS table, row_to_json(a)::text AS text FROM audit_logs a`)),
    ];
    expect(rows.length).toBeGreaterThan(10);
    const leaks = rows.filter(
      (row) => Object.values(SECRETS).some((secret) => row.text.includes(secret)) || row.text.includes(LISTING_TOKEN),
    );
    expect(leaks).toEqual([]);
  });
});
