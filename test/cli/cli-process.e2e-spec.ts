import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BUILT_MAIN, ServerProcess, spawnServer, waitForHttp } from '../support/server-process';

const BUILT_CLI = join(dirname(BUILT_MAIN), 'cli.js');
const PASSWORD = 'Cl1$AdminPass9Q';

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BUILT_CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const lines = (text: string) => text.split('\n').filter(Boolean);

/** The operator CLI as a process (`npm run cli --`), on the embedded default. */
describe('CLI (built)', () => {
  let dataDir: string;
  let server: ServerProcess | undefined;
  const env = () => ({ DATA_DIR: dataDir, BCRYPT_COST: '4' });

  beforeAll(() => {
    if (!existsSync(BUILT_CLI)) throw new Error(`Build first (npm run build): ${BUILT_CLI} is missing`);
    dataDir = mkdtempSync(join(tmpdir(), 'smcp-cli-'));
  });
  afterAll(async () => {
    server?.child.kill('SIGKILL');
    await server?.exited;
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('--help prints the usage and the exit codes on stdout and exits 0; an unknown command is 64', async () => {
    const help = await cli(['--help'], env());
    expect({ code: help.code, stderr: help.stderr }).toEqual({ code: 0, stderr: '' });
    expect(lines(help.stdout)[0]).toBe('Usage: cli <command> [options]   (cli <command> --help)');
    expect(lines(help.stdout).at(-1)).toMatch(/^Exit codes: 0 ok, .*75 data directory in use/);

    const commandHelp = await cli(['create-admin', '--help'], env());
    expect({ code: commandHelp.code, first: lines(commandHelp.stdout)[0] }).toEqual({
      code: 0,
      first: 'Usage: cli create-admin --email <email> --name <name>   (password: ADMIN_PASSWORD or stdin)',
    });

    const unknown = await cli(['frobnicate'], env());
    expect({ code: unknown.code, first: lines(unknown.stderr)[0] }).toEqual({ code: 64, first: 'Unknown command: frobnicate' });
  });

  it('create-admin for an existing email: one line and 65, no query warning', async () => {
    const created = await cli(['create-admin', '--email', 'ops@example.com', '--name', 'Ops'], { ...env(), ADMIN_PASSWORD: PASSWORD });
    expect({ code: created.code, stderr: created.stderr }).toEqual({ code: 0, stderr: '' });
    const again = await cli(['create-admin', '--email', 'ops@example.com', '--name', 'Ops'], { ...env(), ADMIN_PASSWORD: PASSWORD });
    expect({ code: again.code, stderr: lines(again.stderr) }).toEqual({
      code: 65,
      stderr: ['create-admin: An account with this email already exists'],
    });
  }, 120_000);

  it('while the server holds the data directory: one JSON line and exit 75; a second server: one JSON line', async () => {
    server = await spawnServer({ DATA_DIR: dataDir });
    await waitForHttp(`${server.baseUrl}/api/v1/ready`, 90_000);

    const busy = await cli(['audit:verify'], env());
    expect(busy.code).toBe(75);
    expect(lines(busy.stderr)).toHaveLength(1);
    expect(JSON.parse(busy.stderr)).toMatchObject({
      level: 60,
      code: 'DATA_DIR_IN_USE',
      holder: server.child.pid,
      exitCode: 75,
      msg: `audit:verify: DATA_DIR ${dataDir} is in use by process ${server.child.pid}; stop it or set another DATA_DIR`,
    });

    // Before any logger exists, the server's refusal is JSON too (after the human summary).
    const rival = await spawnServer({ DATA_DIR: dataDir });
    expect(await rival.exited).toBe(1);
    const last = JSON.parse(lines(rival.stderr()).at(-1) ?? '{}');
    expect({ level: last.level, code: last.code, holder: last.holder }).toEqual({
      level: 60,
      code: 'DATA_DIR_IN_USE',
      holder: server.child.pid,
    });
    expect(rival.stderr()).not.toMatch(/\x1b\[|^\s+at /m);
  }, 150_000);
});
