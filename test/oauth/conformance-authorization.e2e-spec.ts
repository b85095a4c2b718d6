import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HeadlessBrowser, launchBrowser } from '../support/browser';
import { assertConformanceInstalled, CONFORMANCE_CLI, CONFORMANCE_NODE } from '../support/conformance';
import { ADMIN_EMAIL, identityEnv, login } from '../support/identity';
import { startTestApp, TestApp } from '../support/test-app';
import { adminRegisterClient, asMetadata, AsMetadata, authorizeInBrowser, nativeClientMetadata, userWithTotp } from './oauth-kit';

/**
 * The official MCP conformance suite's authorization-server scenarios
 * (`conformance authorization`: authorization-server-metadata-endpoint, authorization-code-grant)
 * against our issuer. The suite prints the authorization URL and waits on its own loopback
 * callback for the user; here headless Chromium is that user: it signs in (password + TOTP) and
 * consents on our pages, and the suite then redeems the code at our token endpoint itself.
 */
const SCENARIOS = ['authorization-server-metadata-endpoint', 'authorization-code-grant'];

interface Summary {
  exit: number;
  scenarios: Record<string, { passed: number; failed: number }>;
  output: string;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Every check the suite wrote under `dir` (checks.json files), with its scenario directory. */
function checksUnder(dir: string): Array<{ id: string; status: string; errorMessage?: string }> {
  const found: Array<{ id: string; status: string; errorMessage?: string }> = [];
  if (!existsSync(dir)) return found;
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...checksUnder(path));
    else if (entry === 'checks.json') found.push(...JSON.parse(readFileSync(path, 'utf8')));
  }
  return found;
}

describe('MCP conformance (official suite): authorization-server scenarios against our issuer', () => {
  let t: TestApp;
  let browser: HeadlessBrowser;
  let metadata: AsMetadata;
  let outDir: string;
  let suite: ChildProcess | undefined;

  beforeAll(async () => {
    assertConformanceInstalled();
    t = await startTestApp('postgres', { env: identityEnv() });
    metadata = await asMetadata(t.baseUrl);
    browser = await launchBrowser();
    outDir = mkdtempSync(join(tmpdir(), 'smcp-conformance-as-'));
  });
  afterAll(async () => {
    if (suite && suite.exitCode === null) suite.kill('SIGTERM');
    await browser?.close();
    await t?.close();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  it('passes authorization-server-metadata-endpoint and authorization-code-grant (a pre-registered public client, PKCE, resource)', async () => {
    const port = await freePort();
    const redirectUri = `http://127.0.0.1:${port}/callback`;
    const admin = await login(t, ADMIN_EMAIL);
    const client = await adminRegisterClient(t.baseUrl, admin.token, nativeClientMetadata('MCP conformance suite', redirectUri));
    const user = await userWithTotp(t.baseUrl, 'conformance-user@example.com');

    const summary = await new Promise<Summary>((resolve, reject) => {
      const args = [
        CONFORMANCE_CLI,
        'authorization',
        '--url',
        metadata.issuer,
        '--client-id',
        client.clientId,
        '--resource',
        `${t.baseUrl}/api/v1/mcp`,
        '--port',
        String(port),
        '-o',
        outDir,
      ];
      const child = spawn(CONFORMANCE_NODE, args, {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), NO_COLOR: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      suite = child;
      let output = '';
      let browsing: Promise<unknown> | undefined;
      const timer = setTimeout(() => child.kill('SIGTERM'), 150_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        // The suite prints the authorization URL on a line of its own, then waits for the callback.
        const line = output.split('\n').find((l) => l.startsWith(`${metadata.authorization_endpoint}?`));
        if (line && !browsing) {
          browsing = browser.newPage().then(async (page) => {
            await authorizeInBrowser(page, line.trim(), redirectUri, user);
            await page.close();
          });
          browsing.catch((error: unknown) => {
            output += `\n[browser] ${String(error)}\n`;
            child.kill('SIGTERM');
          });
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        const scenarios: Summary['scenarios'] = {};
        for (const match of output.matchAll(/^\s*[✓✗]\s+([a-z0-9-]+): (\d+) passed, (\d+) failed/gm)) {
          scenarios[match[1]] = { passed: Number(match[2]), failed: Number(match[3]) };
        }
        resolve({ exit: code ?? 1, scenarios, output });
      });
    });

    if (summary.exit !== 0) process.stderr.write(summary.output);
    // Every check the suite wrote passed (its message says why when one did not); not even a
    // warning: the metadata says we accept Client ID Metadata Documents.
    const notPassed = checksUnder(outDir).filter((check) => check.status !== 'SUCCESS' && check.status !== 'INFO');
    expect(notPassed).toEqual([]);
    expect(summary.scenarios).toEqual(Object.fromEntries(SCENARIOS.map((name) => [name, { passed: expect.any(Number), failed: 0 }])));
    for (const name of SCENARIOS) expect(summary.scenarios[name].passed).toBeGreaterThan(0);
    expect(summary.exit).toBe(0);
  }, 200_000);
});
