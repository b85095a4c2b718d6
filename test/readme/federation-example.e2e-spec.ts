import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readmeBlocks } from './readme-blocks';

const ROOT = join(__dirname, '..', '..');
const PRODUCTION_ONLY = join(__dirname, 'fixtures', 'production-only.cjs');

interface StdioUpstream {
  name: string;
  transport: 'stdio';
  command: string;
  args: string[];
  env?: Record<string, string>;
}

/** Where the image keeps things: node from the official base image, the app under WORKDIR. */
function imageLayout(): { node: string; workdir: string } {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:\S+$/m); // the official image: node is /usr/local/bin/node
  const workdirs = [...dockerfile.matchAll(/^WORKDIR (\S+)$/gm)].map((m) => m[1]);
  return { node: '/usr/local/bin/node', workdir: workdirs.at(-1)! };
}

/** JSON-RPC over a child's stdio, one message per line. */
function talk(upstream: StdioUpstream, command: string, args: string[]) {
  const child = spawn(command, args, { cwd: ROOT, env: upstream.env ?? {}, stdio: ['pipe', 'pipe', 'pipe'] });
  let buffer = '';
  let stderr = '';
  const waiting = new Map<number, (message: any) => void>();
  child.stderr.on('data', (chunk) => (stderr += chunk));
  child.stdout.on('data', (chunk) => {
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const message = JSON.parse(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
      waiting.get(message.id)?.(message);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let nextId = 1;
  return {
    stderr: () => stderr,
    exited,
    notify: (method: string) => child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method })}\n`),
    request: (method: string, params: unknown) =>
      Promise.race([
        new Promise<any>((resolve) => {
          const id = nextId++;
          waiting.set(id, resolve);
          child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
        }),
        exited.then((code) => Promise.reject(new Error(`upstream exited (${code}) before answering ${method}:\n${stderr}`))),
      ]),
    stop: () => child.kill('SIGKILL'),
  };
}

/**
 * The README's federation example as the image runs it: its stdio upstream started with the
 * image's node path and WORKDIR (mapped onto this checkout and this node), with devDependencies
 * unreachable as after `npm ci --omit=dev`, and asked over MCP for its tools.
 */
describe("README's federation example, with the image's paths and production dependencies only", () => {
  const block = readmeBlocks().find((b) => b.lang === 'json' && b.text.includes('"upstreams"'));
  const upstreams = JSON.parse(block?.text ?? '{"upstreams":[]}').upstreams as Array<{ transport: string }>;
  const stdio = upstreams.find((u): u is StdioUpstream => u.transport === 'stdio');

  it("names the image's node and a script inside the image", () => {
    const { node, workdir } = imageLayout();
    expect(stdio?.command).toBe(node);
    expect(stdio?.args[0].startsWith(`${workdir}/dist/`)).toBe(true);
    expect(existsSync(join(ROOT, stdio!.args[0].slice(workdir.length + 1)))).toBe(true);
  });

  it('starts, lists its tools and answers a call, with devDependencies out of reach', async () => {
    const { workdir } = imageLayout();
    const args = stdio!.args.map((arg) => (arg.startsWith(`${workdir}/`) ? join(ROOT, arg.slice(workdir.length + 1)) : arg));
    const upstream = talk(stdio!, process.execPath, ['--require', PRODUCTION_ONLY, ...args]);
    try {
      const init = await upstream.request('initialize', {
        protocolVersion: '2025-11-25',
        capabilities: {},
        clientInfo: { name: 'readme-test', version: '1.0.0' },
      });
      expect(init.result?.serverInfo?.name).toBe('hello-upstream');
      upstream.notify('notifications/initialized');
      const list = await upstream.request('tools/list', {});
      expect(list.result.tools.map((t: { name: string }) => t.name)).toEqual(['hello']);
      const call = await upstream.request('tools/call', { name: 'hello', arguments: { name: 'Ada' } });
      expect(call.result.structuredContent).toEqual({ greeting: 'Hello, Ada!' });
    } finally {
      upstream.stop();
    }
  });

  it('the guard does refuse a devDependency (so the check above means something)', async () => {
    const child = spawn(
      process.execPath,
      ['--require', PRODUCTION_ONLY, '-e', "require('@modelcontextprotocol/server-everything/package.json')"],
      {
        cwd: ROOT,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain('is a devDependency: the image does not have it');
  });
});
