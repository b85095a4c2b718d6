import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');

/**
 * Loads the server's whole module graph (what `createApp` imports, as a start does) in a fresh
 * Node process, from source, and answers which of the given packages it loaded.
 */
function loadedAtStart(packages: string[]): Record<string, boolean> {
  const script = [
    "require('./apps/server/src/create-app');",
    'const files = Object.keys(require.cache);',
    `const names = ${JSON.stringify(packages)};`,
    "process.stdout.write(JSON.stringify(Object.fromEntries(names.map((name) => [name, files.some((file) => file.includes('/node_modules/' + name + '/'))]))));",
  ].join('\n');
  const out = execFileSync(process.execPath, ['-r', 'ts-node/register', '-r', 'tsconfig-paths/register', '-e', script], {
    cwd: ROOT,
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: 'true', NODE_OPTIONS: '' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(out) as Record<string, boolean>;
}

describe('what a start loads (issue 18, P8)', () => {
  it('leaves undici, ioredis and qrcode unloaded until an HTTP upstream, Redis or an MFA enrolment needs them', () => {
    // fastify is the control: the same check sees a package the server does load at start.
    expect(loadedAtStart(['undici', 'ioredis', 'qrcode', 'fastify'])).toEqual({
      undici: false,
      ioredis: false,
      qrcode: false,
      fastify: true,
    });
  }, 90_000);
});
