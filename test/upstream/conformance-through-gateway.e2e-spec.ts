import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startAuthProxy } from '../mcp/auth-proxy';
import {
  assertConformanceInstalled,
  CONFORMANCE_ROOT,
  ConformanceOutcome,
  ExpectedFailure,
  failingChecks,
  readExpected,
  requiredScenarios,
  Revision,
  REVISIONS,
  runConformance,
  score,
  writeExpected,
} from '../support/conformance';
import { ADMIN_EMAIL, Caller, login } from '../support/identity';
import { http, startTestApp, TestApp } from '../support/test-app';
import { mcpEnv } from '../mcp/mcp-test-kit';
import {
  getTool,
  mcpClient,
  referenceUpstreamEntry,
  ReferenceUpstream,
  startReferenceUpstream,
  stopReferenceUpstream,
  waitFor,
  writeUpstreamsFile,
} from './upstream-test-kit';

/**
 * Transparency measured with the official conformance suite (@modelcontextprotocol/conformance,
 * pinned in test/conformance/). Our reference upstream (test/upstream/fixtures/reference-upstream.cjs,
 * official v2 server SDK, Streamable HTTP, both eras) implements every scenario of the suite's server
 * scenarios. The suite runs against it directly, then through the gateway, where it is declared as
 * an upstream with an EMPTY id prefix (so its tools keep their names): over /api/v1/mcp and over a
 * context endpoint whose context holds the upstream's tools, for --requirements 2026-07-28 and
 * 2025-11-25, through the loopback proxy that adds the bearer token (test/mcp/auth-proxy.ts).
 *
 * Directly, every scenario the revision scores must pass. Through the gateway each run has its own
 * expected-failures file, test/conformance/expected-failures-through-<endpoint>-<revision>.yml
 * (endpoint `gateway` = /api/v1/mcp, `context` = /api/v1/contexts/{id}/mcp), listing exactly the
 * scenarios that fail through the gateway but pass directly, each under the reason it fails: the
 * gateway's gaps, nothing else. The suite's own verdict holds each listed scenario to failing and
 * every other to passing; this test also checks that the list is exact and that every listed
 * scenario passes directly.
 *
 * Regenerating the lists after the gateway gains a feature: run this suite with
 * CONFORMANCE_WRITE_EXPECTED=1. Each run then goes without a baseline and rewrites its file from
 * what it saw: reasons of entries that stay are kept, new entries get "REASON TO BE WRITTEN" (write
 * the reason before committing), entries that now pass disappear. The scores (scored checks and
 * required scenarios passing) are printed for each run.
 */
const WRITE = process.env.CONFORMANCE_WRITE_EXPECTED === '1';
const ENDPOINTS = ['gateway', 'context'] as const;
type Endpoint = (typeof ENDPOINTS)[number];
const NEW_REASON = 'REASON TO BE WRITTEN';

const expectedFile = (endpoint: Endpoint, revision: Revision) =>
  join(CONFORMANCE_ROOT, `expected-failures-through-${endpoint}-${revision}.yml`);

function header(endpoint: Endpoint, revision: Revision): string[] {
  const path = endpoint === 'gateway' ? '/api/v1/mcp' : 'a context endpoint (/api/v1/contexts/{id}/mcp) holding its tools';
  return [
    `Scenarios of \`conformance server --requirements ${revision}\` that fail against our reference upstream`,
    `(test/upstream/fixtures/reference-upstream.cjs) reached through the gateway over ${path}, but pass`,
    'against it directly: the gateway gaps, each with its reason. Exact, and checked by',
    'test/upstream/conformance-through-gateway.e2e-spec.ts; regenerate with CONFORMANCE_WRITE_EXPECTED=1.',
  ];
}

async function upstreamToolNames(url: string): Promise<string[]> {
  const client = new Client({ name: 'conformance-e2e-direct', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  try {
    return (await client.listTools()).tools.map((tool) => tool.name);
  } finally {
    await client.close();
  }
}

/**
 * The upstream's prompts (names), resources (URIs) and templates (URI templates) as the gateway shows
 * them, once they are there: context members besides its tools. None while the gateway federates
 * tools only (it then offers neither capability).
 */
async function federatedMembers(t: TestApp, admin: Caller): Promise<string[]> {
  const client = await mcpClient(t, admin);
  try {
    const offered = client.getServerCapabilities() ?? {};
    const members: string[] = [];
    if (offered.prompts) {
      const prompts = await waitFor("the upstream's prompts at the gateway", async () => {
        const listed = (await client.listPrompts()).prompts;
        return listed.some((prompt) => prompt.name === 'test_simple_prompt') && listed;
      });
      members.push(...prompts.map((prompt) => prompt.name));
    }
    if (offered.resources) {
      const resources = await waitFor("the upstream's resources at the gateway", async () => {
        const listed = (await client.listResources()).resources;
        return listed.some((resource) => resource.name === 'static-text') && listed;
      });
      members.push(...resources.map((resource) => resource.uri));
      members.push(...(await client.listResourceTemplates()).resourceTemplates.map((template) => template.uriTemplate));
    }
    return members;
  } finally {
    await client.close();
  }
}

describe('Conformance of an upstream reached through the gateway (official suite, reference upstream)', () => {
  let reference: ReferenceUpstream;
  let t: TestApp;
  let admin: Caller;
  let proxy: Awaited<ReturnType<typeof startAuthProxy>>;
  let outDir: string;
  let contextId: string;
  const direct = new Map<Revision, ConformanceOutcome>();

  beforeAll(async () => {
    assertConformanceInstalled();
    outDir = mkdtempSync(join(tmpdir(), 'smcp-conformance-gw-'));
    reference = await startReferenceUpstream();
    const upstreams = writeUpstreamsFile(outDir, [referenceUpstreamEntry(reference)]);
    t = await startTestApp('postgres', { env: mcpEnv({ ACCESS_TOKEN_TTL: '3600', MCP_UPSTREAMS_FILE: upstreams }) });
    admin = await login(t, ADMIN_EMAIL);
    const names = await upstreamToolNames(reference.url);
    await waitFor("the reference upstream's tools in the catalogue", async () => {
      for (const name of names) if (!(await getTool(t, admin, name))) return false;
      return true;
    });
    const members = [...names, ...(await federatedMembers(t, admin))];
    const created = await http(t.baseUrl, 'POST', '/api/v1/contexts', {
      token: admin.token,
      body: { name: 'reference upstream', tools: members },
    });
    if (created.status !== 201) throw new Error(`create context: ${created.status} ${created.text}`);
    contextId = created.body.id;
    proxy = await startAuthProxy(t.baseUrl, admin.token);
  }, 240_000);

  afterAll(async () => {
    await proxy?.close();
    await t?.close();
    await stopReferenceUpstream(reference);
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  describe.each(REVISIONS)('--requirements %s', (revision) => {
    it('the reference upstream passes every scenario the revision scores, directly', async () => {
      const outcome = await runConformance(reference.url, revision, join(outDir, `direct-${revision}`));
      direct.set(revision, outcome);
      process.stdout.write(`conformance ${revision} directly: ${score(outcome, revision)}\n`);
      if (outcome.code !== 0) process.stderr.write(outcome.output);
      expect({ exit: outcome.code }).toEqual({ exit: 0 });
      const required = requiredScenarios(revision);
      expect(outcome.failed.filter((name) => required.includes(name))).toEqual([]);
      expect(outcome.passed.length).toBeGreaterThan(0);
    }, 300_000);

    it.each(ENDPOINTS)(
      'through the gateway (%s endpoint): only the listed gateway gaps fail',
      async (endpoint) => {
        const directly = direct.get(revision);
        if (!directly) throw new Error('the direct run of this revision did not complete');
        const file = expectedFile(endpoint, revision);
        const listed = readExpected(file);
        const path = endpoint === 'gateway' ? '/api/v1/mcp' : `/api/v1/contexts/${contextId}/mcp`;
        const outcome = await runConformance(
          `${proxy.url}${path}`,
          revision,
          join(outDir, `${endpoint}-${revision}`),
          WRITE ? undefined : file,
        );
        process.stdout.write(`conformance ${revision} through the gateway (${endpoint}): ${score(outcome, revision)}\n`);
        const gaps = outcome.failed.filter((name) => !directly.failed.includes(name)).sort();

        if (WRITE) {
          // The suite's own account of each gap, to write the reasons from.
          const checks = failingChecks(join(outDir, `${endpoint}-${revision}`)).filter((check) => gaps.includes(check.scenario));
          process.stderr.write(
            checks.map((check) => `${revision} ${endpoint} ${check.scenario} ${check.id} ${check.status}: ${check.message}`).join('\n') +
              '\n',
          );
          const reasons = new Map(listed.map((entry) => [entry.scenario, entry.reason]));
          const entries: ExpectedFailure[] = gaps.map((scenario) => ({ scenario, reason: reasons.get(scenario) || NEW_REASON }));
          writeExpected(file, header(endpoint, revision), entries);
        } else {
          if (outcome.code !== 0) process.stderr.write(outcome.output);
          expect({ exit: outcome.code }).toEqual({ exit: 0 });
          expect(listed.map((entry) => entry.scenario).sort()).toEqual(gaps);
        }
        // Only gateway gaps: whatever is listed passes against the upstream directly, and has a reason.
        const written = readExpected(file);
        expect(written.filter((entry) => directly.failed.includes(entry.scenario))).toEqual([]);
        expect(outcome.passed.length).toBeGreaterThan(0);
        if (!WRITE) expect(written.filter((entry) => entry.reason === '' || entry.reason === NEW_REASON)).toEqual([]);
      },
      300_000,
    );
  });
});
