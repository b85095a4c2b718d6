import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertConformanceInstalled, CONFORMANCE_ROOT, readExpected, REVISIONS, runConformance, score } from '../support/conformance';
import { startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL } from '../tools/tools-test-kit';
import { startAuthProxy } from './auth-proxy';
import { login, mcpEnv } from './mcp-test-kit';

/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
 * test/conformance/) against /api/v1/mcp, for the 2026-07-28 requirements and for the
 * 2025-11-25 ones. It runs on the Node 22 binary installed beside it (it needs Node >= 22) and
 * reaches the authenticated endpoint through a loopback proxy that adds the bearer token. Each
 * run must exit 0 against its expected-failures file: every scenario not listed there passes,
 * and every listed one still fails (a listed scenario that passes is "stale" and fails the run).
 * The gateway serves its own catalogue here (no upstream): the suite's fixture tools, prompts and
 * resources are measured through the gateway in test/upstream/conformance-through-gateway.e2e-spec.ts.
 */
describe('MCP conformance (official suite) against /api/v1/mcp', () => {
  let t: TestApp;
  let proxy: Awaited<ReturnType<typeof startAuthProxy>>;
  let outDir: string;

  beforeAll(async () => {
    assertConformanceInstalled();
    t = await startTestApp('postgres', { env: mcpEnv({ ACCESS_TOKEN_TTL: '3600' }) });
    const admin = await login(t, ADMIN_EMAIL);
    proxy = await startAuthProxy(t.baseUrl, admin.token);
    outDir = mkdtempSync(join(tmpdir(), 'smcp-conformance-'));
  });
  afterAll(async () => {
    await proxy?.close();
    await t?.close();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  it.each(REVISIONS)(
    'passes --requirements %s apart from the named expected failures',
    async (revision) => {
      const expected = join(CONFORMANCE_ROOT, `expected-failures-${revision}.yml`);
      const listed = readExpected(expected).map((entry) => entry.scenario);
      const outcome = await runConformance(`${proxy.url}/api/v1/mcp`, revision, join(outDir, revision), expected);
      process.stdout.write(`conformance ${revision} against /api/v1/mcp: ${score(outcome, revision)}\n`);
      if (outcome.code !== 0) process.stderr.write(outcome.output);
      expect({ exit: outcome.code }).toEqual({ exit: 0 });
      expect(outcome.passed.length).toBeGreaterThan(0);
      // The suite's own verdict above already holds every listed scenario to failing; say it here too.
      expect(outcome.failed.filter((name) => !listed.includes(name))).toEqual([]);
    },
    300_000,
  );
});
