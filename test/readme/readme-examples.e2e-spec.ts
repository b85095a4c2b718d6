import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BUILT_MAIN, ServerProcess, spawnServer, waitForHttp } from '../support/server-process';
import { README, readmeBlocks, runnableScript } from './readme-blocks';

/** Shell commands of a block, continuation lines joined, comments dropped. */
function commandsOf(text: string): string[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

function runBash(script: string, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // The node that runs the tests, first on PATH: the README's `node -p` reads the answers.
    const child = spawn('bash', ['-c', script], {
      cwd,
      env: { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, HOME: cwd },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * The README's shell examples marked `<!-- run -->`, run in order with bash against a freshly
 * started built server on the embedded default: a broken example fails the build.
 */
describe('README examples', () => {
  const blocks = readmeBlocks();
  const runnable = blocks.filter((block) => block.run);

  it('marks the quick start, identity, tools, MCP and error examples as runnable, all of them sh', () => {
    expect(runnable.length).toBeGreaterThanOrEqual(5);
    expect(runnable.map((block) => block.lang)).toEqual(runnable.map(() => 'sh'));
    const all = runnable.map((block) => block.text).join('\n');
    expect(all).toContain('io.modelcontextprotocol/clientCapabilities');
    expect(all).toContain("-H 'content-type: text/plain'");
  });

  it('checks the status of every curl in a runnable block (-f, or -w %{http_code} compared)', () => {
    const unchecked = runnable.flatMap((block) =>
      commandsOf(block.text).filter((command) => /\bcurl\b/.test(command) && !/\bcurl -f|--fail\b|%\{http_code\}/.test(command)),
    );
    expect(unchecked).toEqual([]);
  });

  it('links only to files the repository has (no ../shared outside a clone)', () => {
    const text = readFileSync(README, 'utf8');
    expect(text.match(/\.\.\/shared\b/g) ?? []).toEqual([]);
    const targets = [...text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)].map((m) => m[1]).filter((t) => !/^[a-z]+:/.test(t));
    expect(targets.length).toBeGreaterThan(0);
    expect(targets.filter((target) => !existsSync(join(dirname(README), target)))).toEqual([]);
  });

  describe('against the built server', () => {
    let dataDir: string;
    let workDir: string;
    let server: ServerProcess;

    beforeAll(async () => {
      if (!existsSync(BUILT_MAIN)) throw new Error(`Build first (npm run build): ${BUILT_MAIN} is missing`);
      dataDir = mkdtempSync(join(tmpdir(), 'smcp-readme-'));
      workDir = mkdtempSync(join(tmpdir(), 'smcp-readme-cwd-'));
      // The embedded default, as `npm start` runs it: only where to keep data and which port.
      server = await spawnServer({ DATA_DIR: dataDir });
      await waitForHttp(`${server.baseUrl}/api/v1/ready`, 90_000);
    }, 120_000);
    afterAll(async () => {
      server?.child.kill('SIGKILL');
      await server?.exited;
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(workDir, { recursive: true, force: true });
    });

    it('runs every marked example in order and each command succeeds', async () => {
      const result = await runBash(runnableScript(blocks, server.port), workDir);
      const readme = readFileSync(README, 'utf8').split('\n');
      const failure = result.stderr
        .split('\n')
        .filter((line) => line.startsWith('README.md:'))
        .map((line) => `${line}\n  ${readme[Number(/^README\.md:(\d+)/.exec(line)?.[1]) - 1] ?? ''}\n${result.stderr.slice(-2000)}`);
      expect({ code: result.code, failure }).toEqual({
        code: 0,
        failure: [],
      });
      // The MCP examples answered with results, not JSON-RPC errors (those can come with 200).
      const answers = result.stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line))
        .filter((answer) => answer.jsonrpc === '2.0');
      expect(answers.length).toBeGreaterThanOrEqual(2);
      expect(answers.map((answer) => answer.error)).toEqual(answers.map(() => undefined));
      expect(answers.every((answer) => typeof answer.result === 'object')).toBe(true);
      // tool_statistics advertises an output schema over MCP, so its call answers structuredContent.
      const call = answers.find((answer) => answer.result?.structuredContent !== undefined);
      expect({ operation: call?.result.structuredContent.operation, count: call?.result.structuredContent.count }).toEqual({
        operation: 'describe',
        count: 5,
      });
    }, 120_000);
  });
});
