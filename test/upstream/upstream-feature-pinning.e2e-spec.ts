import type { Client } from '@modelcontextprotocol/client';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { connectHttp } from '../mcp/mcp-test-kit';
import { http, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, login, toolsEnv } from '../tools/tools-test-kit';
import { stdioUpstream, waitFor, writeUpstreamsFile } from './upstream-test-kit';

const PROMPT_UPSTREAM = join(__dirname, 'fixtures', 'prompt-upstream.cjs');
const TEMPLATE = 'mcp-upstream://notes/note://{id}';
const PROMPT_PIN = encodeURIComponent('prompt/notes.brief');
const TEMPLATE_PIN = encodeURIComponent(`template/${TEMPLATE}`);

/**
 * Prompts and resource templates are pinned like tool definitions: an upstream that changes one
 * while running (test/upstream/fixtures/prompt-upstream.cjs) has it held — not listed, not
 * served — and audited, until an administrator approves the offered definition through the same
 * approval endpoint as tools.
 */
describe('Pinning of federated prompts and resource templates', () => {
  let t: TestApp;
  let admin: Caller;
  let db: DataSource;
  let client: Client;

  const promptNames = async () => (await client.listPrompts()).prompts.map((prompt) => prompt.name);
  const templates = async () => (await client.listResourceTemplates()).resourceTemplates;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smcp-feature-pins-'));
    const file = writeUpstreamsFile(dir, [stdioUpstream('notes', PROMPT_UPSTREAM, [])]);
    t = await startTestApp('postgres', { env: toolsEnv({ MCP_UPSTREAMS_FILE: file }) });
    db = t.app.get(DataSource);
    admin = await login(t, ADMIN_EMAIL);
    await waitFor(
      'the upstream connected',
      async () => {
        const { client: probe } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, admin.token, 'modern');
        try {
          return probe.getServerCapabilities()?.prompts ? true : undefined;
        } finally {
          await probe.close();
        }
      },
      120_000,
      500,
    );
    ({ client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, admin.token, 'modern'));
  }, 180_000);

  afterAll(async () => {
    await client?.close();
    await t?.close();
  });

  it('trusts the first definitions it sees and pins them', async () => {
    expect(await promptNames()).toEqual(['notes.brief']);
    expect((await templates()).map((template) => template.uriTemplate)).toEqual([TEMPLATE]);
    const pin = await http(t.baseUrl, 'GET', `/api/v1/admin/tools/${PROMPT_PIN}/approval`, { token: admin.token });
    expect(pin.status).toBe(200);
    expect(pin.body).toMatchObject({ status: 'approved', upstream: 'notes' });
    expect(pin.body.approvedHash).toBe(pin.body.offeredHash);
  });

  it('holds a changed prompt until an administrator approves it', async () => {
    await client.callTool({ name: 'notes.mutate', arguments: { description: 'Writes a much longer brief' } });
    await waitFor('the changed prompt held', async () => ((await promptNames()).length === 0 ? true : undefined), 60_000, 200);
    await expect(client.getPrompt({ name: 'notes.brief', arguments: { topic: 'pins' } })).rejects.toMatchObject({
      code: -32000,
      data: { error: 'DEFINITION_NOT_APPROVED' },
    });
    const audited: Array<{ result: string; severity: string }> = await db.query(
      `SELECT result, severity FROM audit_logs WHERE action = 'tool.definition_changed' AND resource = $1`,
      ['tool:prompt/notes.brief'],
    );
    expect(audited).toEqual([{ result: 'failure', severity: 'critical' }]);

    const pin = await http(t.baseUrl, 'GET', `/api/v1/admin/tools/${PROMPT_PIN}/approval`, { token: admin.token });
    expect(pin.body).toMatchObject({ status: 'pending', changedFields: ['description'] });
    const approved = await http(t.baseUrl, 'POST', `/api/v1/admin/tools/${PROMPT_PIN}/approve`, {
      token: admin.token,
      body: { definitionHash: pin.body.offeredHash },
    });
    expect(approved.status).toBe(200);
    const listed = (await client.listPrompts()).prompts;
    expect(listed).toEqual([expect.objectContaining({ name: 'notes.brief', description: 'Writes a much longer brief' })]);
    const answer = await client.getPrompt({ name: 'notes.brief', arguments: { topic: 'pins' } });
    expect(answer.messages).toEqual([{ role: 'user', content: { type: 'text', text: 'Brief me on pins' } }]);
  });

  it('holds a changed resource template, and reads of its expansions, until approved', async () => {
    const uri = 'mcp-upstream://notes/note://5';
    expect((await client.readResource({ uri })).contents).toEqual([{ uri, mimeType: 'text/plain', text: 'Note note://5' }]);
    await client.callTool({ name: 'notes.mutate', arguments: { description: 'A note, now with more', template: true } });
    await waitFor('the changed template held', async () => ((await templates()).length === 0 ? true : undefined), 60_000, 200);
    await expect(client.readResource({ uri })).rejects.toMatchObject({ code: -32602 });

    const pin = await http(t.baseUrl, 'GET', `/api/v1/admin/tools/${TEMPLATE_PIN}/approval`, { token: admin.token });
    expect(pin.body).toMatchObject({ status: 'pending', changedFields: ['description'] });
    const approved = await http(t.baseUrl, 'POST', `/api/v1/admin/tools/${TEMPLATE_PIN}/approve`, {
      token: admin.token,
      body: { definitionHash: pin.body.offeredHash },
    });
    expect(approved.status).toBe(200);
    expect(await templates()).toEqual([expect.objectContaining({ uriTemplate: TEMPLATE, description: 'A note, now with more' })]);
    expect((await client.readResource({ uri })).contents).toEqual([{ uri, mimeType: 'text/plain', text: 'Note note://5' }]);
  });
});
