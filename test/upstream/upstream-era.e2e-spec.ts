import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, execute, login, toolsEnv } from '../tools/tools-test-kit';
import { EVERYTHING, listTools, stdioUpstream, upstreamHealth, waitFor, writeUpstreamsFile } from './upstream-test-kit';

const RELAY_UPSTREAM = join(__dirname, 'fixtures', 'relay-upstream.cjs');
const FAST_RECONNECT = { reconnect: { initialDelayMs: 50, maxDelayMs: 200 } };
/**
 * On stdio the SDK takes a probe that times out for a 2025-only server: on a loaded machine the
 * probe's sibling process may need more than the default 10 s to answer, so the hang guard is wide.
 */
const PATIENT_PROBE = { timeouts: { connectMs: 120_000 } };

/** The tool names the catalogue lists under `prefix`, without it, sorted. */
async function namesUnder(t: TestApp, caller: Caller, prefix: string): Promise<string[]> {
  return (await listTools(t, caller))
    .filter((tool) => tool.id.startsWith(prefix))
    .map((tool) => tool.id.slice(prefix.length))
    .sort();
}

/**
 * Era negotiation per upstream: the gateway speaks 2026-07-28 to an upstream that offers it
 * (`protocol: "auto"`), the 2025 era otherwise, and lists the same tools either way. An upstream
 * that offers 2026-07-28 but answers it out of spec (results without `resultType`, like the
 * conformance suite's reference server) is spoken to on the 2025 era instead, with the reason in
 * the administrators' health view.
 */
describe('Protocol era per upstream', () => {
  let t: TestApp;
  let admin: Caller;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'smcp-era-'));
    const file = writeUpstreamsFile(dir, [
      stdioUpstream('modern', RELAY_UPSTREAM, [], { protocol: 'auto', ...PATIENT_PROBE }),
      stdioUpstream('legacy', RELAY_UPSTREAM, [], { protocol: 'legacy' }),
      stdioUpstream('sloppy', RELAY_UPSTREAM, [], {
        protocol: 'auto',
        env: { FIXTURE_OMIT_RESULT_TYPE: '1' },
        ...FAST_RECONNECT,
        ...PATIENT_PROBE,
      }),
      stdioUpstream('everything', EVERYTHING, ['stdio'], { protocol: 'legacy' }),
    ]);
    t = await startTestApp('postgres', { env: toolsEnv({ MCP_UPSTREAMS_FILE: file }) });
    admin = await login(t, ADMIN_EMAIL);
    for (const upstream of ['modern', 'legacy', 'sloppy', 'everything']) {
      await waitFor(`${upstream} connected`, async () => (await upstreamHealth(t, upstream))?.state === 'connected', 150_000);
    }
  });

  afterAll(() => t?.close());

  it('speaks 2026-07-28 to an upstream that offers it and the 2025 era to one declared legacy', async () => {
    expect(await upstreamHealth(t, 'modern')).toMatchObject({ era: '2026-07-28', eraFallback: null });
    expect(await upstreamHealth(t, 'legacy')).toMatchObject({ era: '2025', eraFallback: null });
  });

  it('lists the same tools on either era', async () => {
    await waitFor('both listed', async () => (await namesUnder(t, admin, 'legacy.')).length > 0);
    const modern = await namesUnder(t, admin, 'modern.');
    expect(modern).toEqual(['ask-form', 'ask-roots', 'ask-sampling', 'ask-twice', 'ask-url', 'plain']);
    expect(await namesUnder(t, admin, 'legacy.')).toEqual(modern);
  });

  it("lists a 2025 upstream's tools that it offers only to clients declaring sampling, elicitation or roots", async () => {
    // server-everything lists get-roots-list, trigger-sampling-request and the elicitation tools only to such clients.
    const direct = new Client(
      { name: 'era-direct', version: '1.0.0' },
      { capabilities: { sampling: {}, elicitation: { form: {}, url: {} }, roots: {} } },
    );
    await direct.connect(new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'], stderr: 'ignore' }));
    try {
      const offered = (await direct.listTools()).tools.map((tool) => tool.name).sort();
      expect(offered).toEqual(expect.arrayContaining(['get-roots-list', 'trigger-sampling-request', 'trigger-elicitation-request']));
      await waitFor('everything listed', async () => (await namesUnder(t, admin, 'everything.')).length === offered.length);
      expect(await namesUnder(t, admin, 'everything.')).toEqual(offered);
    } finally {
      await direct.close();
    }
  });

  it('falls back to the 2025 era for an upstream that answers 2026-07-28 out of spec, and tells administrators why', async () => {
    const health = await upstreamHealth(t, 'sloppy');
    expect(health).toMatchObject({ status: 'healthy', state: 'connected', era: '2025' });
    const fallback = health!.eraFallback as { reason: string; at: string };
    expect(fallback.reason).toContain('resultType');
    expect(Number.isNaN(Date.parse(fallback.at))).toBe(false);
    // Its tools are listed and answer as on any 2025 upstream.
    expect(await namesUnder(t, admin, 'sloppy.')).toEqual(await namesUnder(t, admin, 'modern.'));
    const res = await execute(t, admin, 'sloppy.plain', { parameters: {} });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'completed', result: { content: [{ type: 'text', text: 'plain' }] } });
  });
});
