import { spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const DIST = join(ROOT, 'dist');
const MAIN = join(DIST, 'apps', 'server', 'src', 'main.js');

function build(): { status: number | null; compiled: number; removed: number } {
  const result = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build.js')], { cwd: ROOT, encoding: 'utf8' });
  const summary = /build: (\d+) file\(s\) compiled, (\d+) stale removed/.exec(result.stderr);
  if (result.status !== 0 || !summary) throw new Error(`build failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return { status: result.status, compiled: Number(summary[1]), removed: Number(summary[2]) };
}

/**
 * `npm start` runs scripts/build.js before the server: an unchanged tree compiles nothing and
 * rewrites nothing (a running server's files stay as they are), and output whose source is gone
 * is swept. Runs on the repository's own dist/, which `npm test` has just built.
 */
describe('incremental build (npm start, npm run build)', () => {
  beforeAll(() => {
    if (!existsSync(MAIN)) throw new Error(`Build first (npm run build): ${MAIN} is missing`);
  });

  it('compiles nothing and leaves the output untouched when nothing changed, and sweeps output without a source', () => {
    build(); // brings dist/ up to date with the tree as it is
    const before = statSync(MAIN);
    const stale = join(DIST, 'libs', 'core', 'src', 'removed-source.js');
    writeFileSync(stale, 'module.exports = {};\n');
    writeFileSync(`${stale}.map`, '{}\n');

    const again = build();
    expect({ compiled: again.compiled, removed: again.removed }).toEqual({ compiled: 0, removed: 2 });
    const after = statSync(MAIN);
    expect({ ino: after.ino, mtimeMs: after.mtimeMs }).toEqual({ ino: before.ino, mtimeMs: before.mtimeMs });
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(join(DIST, 'libs', 'database', 'pglite-template', 'PG_VERSION'))).toBe(true);
  }, 300_000);
});
