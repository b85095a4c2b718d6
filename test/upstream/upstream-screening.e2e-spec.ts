import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { UpstreamRegistry } from '@app/tools';
import { DATABASE_KINDS, http, HttpResult, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, execute, login, signUp, toolsEnv, updateTool } from '../tools/tools-test-kit';
import { getTool, mcpClient, mcpToolNames, stdioUpstream, upstreamHealth, waitFor, writeUpstreamsFile } from './upstream-test-kit';

const POISONED_UPSTREAM = join(__dirname, 'fixtures', 'poisoned-upstream.cjs');

/**
 * Tool definitions are screened on first sight: a real upstream on the official server SDK
 * offers one clean and two poisoned tools; agents never see the poisoned ones until an
 * administrator has reviewed and approved them.
 */
describe.each(DATABASE_KINDS)('Upstream definition screening (%s)', (kind) => {
  let t: TestApp;
  let db: DataSource;
  let dir: string;
  let admin: Caller;
  let user: Caller;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'smcp-screen-'));
    const file = writeUpstreamsFile(dir, [
      stdioUpstream('sketchy', POISONED_UPSTREAM, [], { reconnect: { initialDelayMs: 50, maxDelayMs: 200 } }),
    ]);
    t = await startTestApp(kind, { env: toolsEnv({ MCP_UPSTREAMS_FILE: file }) });
    db = t.app.get(DataSource);
    admin = await login(t, ADMIN_EMAIL);
    user = await signUp(t, `screen-${kind}@example.com`);
    await waitFor(
      'sketchy tools listed',
      async () => (await getTool(t, admin, 'sketchy.lookup')) && (await getTool(t, admin, 'sketchy.notes')),
    );
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const approval = (id: string): Promise<HttpResult> =>
    http(t.baseUrl, 'GET', `/api/v1/admin/tools/${id}/approval`, { token: admin.token });
  const agentToolNames = async (): Promise<string[]> => {
    const client = await mcpClient(t, user);
    try {
      return await mcpToolNames(client);
    } finally {
      await client.close();
    }
  };

  it('holds poisoned definitions on first sight: hidden from agents, not callable, not enableable; the clean tool is served', async () => {
    const names = await agentToolNames();
    expect(names).toContain('sketchy.add');
    expect(names).not.toContain('sketchy.notes');
    expect(names).not.toContain('sketchy.lookup');

    expect((await execute(t, user, 'sketchy.add', { parameters: { a: 2, b: 3 } })).body).toMatchObject({
      status: 'completed',
      result: { content: [{ type: 'text', text: '5' }] },
    });
    for (const id of ['sketchy.notes', 'sketchy.lookup']) {
      const call = await execute(t, user, id, { parameters: id === 'sketchy.notes' ? { note: 'x' } : { word: 'x' } });
      expect([id, call.status, call.body.error]).toEqual([id, 403, 'TOOL_DISABLED']);
      expect((await getTool(t, admin, id))!.enabled).toBe(false);
      const enable = await updateTool(t, admin, id, { enabled: true });
      expect([id, enable.status, enable.body.error]).toEqual([id, 409, 'TOOL_PENDING_APPROVAL']);
    }
    expect((await getTool(t, admin, 'sketchy.add'))!.enabled).toBe(true);
  });

  it('audits what was detected, critical, and shows it to the reviewing admin', async () => {
    const flagged: Array<{ resource: string; severity: string; result: string; details: any }> = await db.query(
      `SELECT resource, severity, result, details FROM audit_logs WHERE action = 'tool.definition_flagged' ORDER BY resource`,
    );
    expect(flagged.map((row) => [row.resource, row.severity, row.result])).toEqual([
      ['tool:sketchy.lookup', 'critical', 'failure'],
      ['tool:sketchy.notes', 'critical', 'failure'],
    ]);
    const kindsOf = (findings: Array<{ kind: string; field: string }>) => [...new Set(findings.map((f) => `${f.field}:${f.kind}`))].sort();
    expect(kindsOf(flagged[0].details.findings)).toEqual([
      'inputSchema.properties.word.description:hidden-characters',
      'inputSchema.properties.word.description:html-comment',
    ]);
    expect(kindsOf(flagged[1].details.findings)).toEqual([
      'description:instruction-markup',
      'description:instruction-phrase',
      'description:sensitive-path',
    ]);

    const pin = await approval('sketchy.notes');
    expect(pin.status).toBe(200);
    expect(pin.body).toMatchObject({ status: 'pending', approvedHash: null, approvedDefinition: null, approvedBy: null });
    expect(pin.body.findings.map((f: { kind: string }) => f.kind).sort()).toEqual([
      'instruction-markup',
      'instruction-phrase',
      'sensitive-path',
    ]);
    expect(pin.body.offeredDefinition.description).toContain('<IMPORTANT>');
    expect((await approval('sketchy.add')).body).toMatchObject({ status: 'approved', findings: [] });
  });

  it('serves a held tool once an administrator approves its exact definition, audited', async () => {
    const pending = (await approval('sketchy.lookup')).body;
    expect(
      (
        await http(t.baseUrl, 'POST', '/api/v1/admin/tools/sketchy.lookup/approve', {
          token: user.token,
          body: { definitionHash: pending.offeredHash },
        })
      ).status,
    ).toBe(403);
    const res = await http(t.baseUrl, 'POST', '/api/v1/admin/tools/sketchy.lookup/approve', {
      token: admin.token,
      body: { definitionHash: pending.offeredHash },
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'approved', approvedHash: pending.offeredHash, approvedBy: admin.userId });
    expect(await agentToolNames()).toContain('sketchy.lookup');
    expect((await execute(t, user, 'sketchy.lookup', { parameters: { word: 'mcp' } })).body.status).toBe('completed');
    const [approved] = await db.query(
      `SELECT user_id, details FROM audit_logs WHERE action = 'tool.definition_approved' AND resource = 'tool:sketchy.lookup'`,
    );
    expect(approved).toMatchObject({
      user_id: admin.userId,
      details: expect.objectContaining({ previousHash: null, approvedHash: pending.offeredHash }),
    });
    // The other poisoned tool is still held.
    expect(await agentToolNames()).not.toContain('sketchy.notes');
  });

  it('withdraws automatic trust from a flagged definition pinned before screening existed', async () => {
    // What an upgraded deployment has: the poisoned definition trusted on first use, by nobody.
    await db.query(
      `UPDATE upstream_tool_pins SET approved_hash = offered_hash, approved_definition = offered_definition, status = 'approved',
         findings = '[]'::jsonb, approved_by = NULL WHERE tool_id = 'sketchy.notes'`,
    );
    const before = (await upstreamHealth(t, 'sketchy'))!.lastConnectedAt;
    process.kill(t.app.get(UpstreamRegistry).get('sketchy')!.status().pid!, 'SIGKILL');
    await waitFor('sketchy reconnected', async () => {
      const health = await upstreamHealth(t, 'sketchy');
      return health?.state === 'connected' && health.lastConnectedAt !== before;
    });
    const pin = await waitFor('notes held again', async () => {
      const res = await approval('sketchy.notes');
      return res.body.status === 'pending' ? res.body : undefined;
    });
    expect(pin).toMatchObject({ approvedHash: null, approvedBy: null });
    const revoked = await db.query(
      `SELECT details FROM audit_logs WHERE action = 'tool.definition_flagged' AND resource = 'tool:sketchy.notes' AND details->>'trustRevoked' = 'true'`,
    );
    expect(revoked).toHaveLength(1);
    expect(await agentToolNames()).not.toContain('sketchy.notes');
    // An administrator's approval is not withdrawn: the approved lookup tool is still served.
    expect(await agentToolNames()).toContain('sketchy.lookup');
  });
});
