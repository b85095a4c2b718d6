import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILT_MAIN, ServerProcess, spawnServer, waitForHttp } from '../support/server-process';
import { http, HttpResult } from '../support/test-app';
import { ADMIN_EMAIL, PASSWORD, toolsEnv } from './tools-test-kit';

const HEAVY_FILES = 12_000;
/** The costliest glob for the two-pointer matcher: every name position restarts a long literal run. */
const HEAVY_PATTERN = `*${'a'.repeat(254)}b`;

/** CPU time (user + system, in clock ticks) the process has used so far. */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * Built-in tools must never hold the event loop. The built server runs as its own process here,
 * so a frozen loop shows as unanswered requests (an in-process server would freeze the test too).
 * The storage is irrelevant to these checks: the embedded default only.
 */
describe('built-in tools and the event loop (server process)', () => {
  let dataDir: string;
  let outsideDir: string;
  let server: ServerProcess;
  let token: string;

  beforeAll(async () => {
    if (!existsSync(BUILT_MAIN)) throw new Error(`Build first (npm run build): ${BUILT_MAIN} is missing`);
    dataDir = mkdtempSync(join(tmpdir(), 'smcp-loop-'));
    outsideDir = mkdtempSync(join(tmpdir(), 'smcp-loop-outside-'));
    const sandbox = join(dataDir, 'sandbox');
    mkdirSync(join(sandbox, 'redos'), { recursive: true });
    mkdirSync(join(sandbox, 'heavy'));
    // The assessment's case: 52-character names against *a*a*a*a*a*a*a*b froze the server 13 s each.
    for (let i = 10; i < 20; i += 1) writeFileSync(join(sandbox, 'redos', `${'a'.repeat(50)}${i}`), '');
    for (let i = 0; i < HEAVY_FILES; i += 1) writeFileSync(join(sandbox, 'heavy', `${'a'.repeat(240)}${i}`), '');
    writeFileSync(join(outsideDir, 'secret.txt'), 'outside secret');
    linkSync(join(outsideDir, 'secret.txt'), join(sandbox, 'hard-link.txt'));

    server = await spawnServer({ DATA_DIR: dataDir, LOG_LEVEL: 'error', ...toolsEnv() });
    await waitForHttp(`${server.baseUrl}/api/v1/ready`, 60_000);
    const login = await http(server.baseUrl, 'POST', '/api/v1/auth/login', { body: { email: ADMIN_EMAIL, password: PASSWORD } });
    expect(login.status).toBe(200);
    token = login.body.accessToken;
  });

  afterAll(async () => {
    if (server && server.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(outsideDir, { recursive: true, force: true });
  });

  const search = (path: string, pattern: string, timeout: number): Promise<HttpResult> =>
    http(server.baseUrl, 'POST', '/api/v1/tools/tool_filesystem/execute', {
      token,
      body: { parameters: { operation: 'search', path, pattern, maxDepth: 0 }, options: { timeout } },
    });

  it('answers the assessment’s pathological glob at once', async () => {
    // A backtracking matcher needs minutes here: it would end in TIMEOUT, not `completed`.
    const res = await search('redos', '*a*a*a*a*a*a*a*b', 30_000);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('completed');
    expect(res.body.result.matches).toEqual([]);
    const hit = await search('redos', '*a*a*a*a*a*a*a*1?', 60_000);
    expect(hit.body.result.matches).toHaveLength(10);
  });

  it('keeps answering /health while a CPU-heavy search runs', async () => {
    let searchDone = false;
    const heavy = search('heavy', HEAVY_PATTERN, 120_000).finally(() => (searchDone = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const health: Array<{ status: number; whileSearching: boolean }> = [];
    while (!searchDone && health.length < 200) {
      const res = await fetch(`${server.baseUrl}/api/v1/health`);
      health.push({ status: res.status, whileSearching: !searchDone });
    }
    const res = await heavy;
    expect(res.body).toMatchObject({ status: 'completed', result: { matches: [] } });
    const answeredWhileSearching = health.filter((h) => h.whileSearching);
    expect(answeredWhileSearching.length).toBeGreaterThan(1);
    expect(answeredWhileSearching.every((h) => h.status === 200)).toBe(true);
  });

  it('stops the work itself when the call times out, not only the answer', async () => {
    const res = await search('heavy', HEAVY_PATTERN, 200);
    expect(res.body).toMatchObject({ status: 'failed', error: { code: 'TIMEOUT' } });
    // If the search went on behind the answer, the process would keep a core busy.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const before = cpuTicks(server.child.pid!);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const used = cpuTicks(server.child.pid!) - before;
    expect(used).toBeLessThan(40); // ticks of 10 ms: under 40% of one core over that second
  });

  it('refuses to read a hard link to a file outside the sandbox', async () => {
    for (const operation of ['read', 'stat']) {
      const res = await http(server.baseUrl, 'POST', '/api/v1/tools/tool_filesystem/execute', {
        token,
        body: { parameters: { operation, path: 'hard-link.txt' } },
      });
      expect({ operation, status: res.status, body: res.body.status, code: res.body.error?.code }).toEqual({
        operation,
        status: 200,
        body: 'failed',
        code: 'SANDBOX_VIOLATION',
      });
      expect(res.text.includes('outside secret')).toBe(false);
    }
  });
});
