// npm run build / npm start: compiles only what changed and never empties dist/, so a second
// `npm start` is ready in seconds and a build next to a running server leaves its files alone.
//
//   1. `tsc -b` (incremental, tsconfig.build.json, build info in dist/.tsbuildinfo): when no
//      input is newer than the build info it stops after a timestamp check; otherwise it emits
//      only the files whose output changed.
//   2. The @app/* aliases of exactly the emitted files are rewritten to relative paths (tsc-alias).
//   3. Output whose source is gone (a deleted or renamed file, e.g. a migration TypeORM would still
//      load) is removed.
//   4. Assets and the embedded database's template (cached per content, see pglite-template.js).
//
// A build that stopped half-way (no dist/.build-complete) is redone in full next time, and so is
// one whose expected output is missing. `npm run build:clean` starts from an empty dist/.
const { spawnSync } = require('node:child_process');
const { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { join, relative, sep } = require('node:path');

const root = join(__dirname, '..');
const DIST = join(root, 'dist');
const BUILD_INFO = join(DIST, '.tsbuildinfo');
const COMPLETE = join(DIST, '.build-complete');
const TSCONFIG = join(root, 'tsconfig.build.json');
/** Not compiled output: written by pglite-template.js, never swept. */
const KEEP = new Set([join(DIST, 'libs', 'database', 'pglite-template')]);
const SOURCE_DIRS = ['apps', 'libs'];

function isSource(name) {
  return name.endsWith('.ts') && !name.endsWith('.d.ts') && !name.endsWith('.spec.ts') && !name.endsWith('.test-helpers.ts');
}

function walk(dir, visit) {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && !KEEP.has(path)) walk(path, visit);
    } else visit(path);
  }
}

/** Every source tsconfig.build.json compiles, as paths relative to the root without `.ts`. */
function sources() {
  const found = new Set(['ormconfig']);
  for (const dir of SOURCE_DIRS) {
    walk(join(root, dir), (path) => {
      if (isSource(path)) found.add(relative(root, path).slice(0, -'.ts'.length));
    });
  }
  return found;
}

function run(command, args) {
  const result = spawnSync(process.execPath, [command, ...args], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw result.error;
  return result;
}

async function main() {
  const started = Date.now();
  const expected = sources();
  const missing = [...expected].some((base) => !existsSync(join(DIST, `${base}.js`)));
  if (existsSync(BUILD_INFO) && (missing || !existsSync(COMPLETE))) rmSync(BUILD_INFO);
  rmSync(COMPLETE, { force: true });

  const tsc = run(require.resolve('typescript/bin/tsc'), ['-b', TSCONFIG, '--listEmittedFiles']);
  const emitted = [];
  const messages = [];
  for (const line of tsc.stdout.split('\n')) {
    if (line.startsWith('TSFILE: ')) emitted.push(line.slice('TSFILE: '.length).trim());
    else if (line.trim() !== '') messages.push(line);
  }
  if (messages.length > 0) process.stdout.write(`${messages.join('\n')}\n`);
  if (tsc.stderr) process.stderr.write(tsc.stderr);
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);

  const scripts = emitted.filter((file) => file.endsWith('.js'));
  if (scripts.length > 0) {
    const { prepareSingleFileReplaceTscAliasPaths } = require('tsc-alias');
    const replace = await prepareSingleFileReplaceTscAliasPaths({ configFile: TSCONFIG });
    for (const filePath of scripts) {
      const fileContents = readFileSync(filePath, 'utf8');
      const replaced = replace({ fileContents, filePath });
      if (replaced !== fileContents) writeFileSync(filePath, replaced);
    }
  }

  let removed = 0;
  for (const dir of SOURCE_DIRS) {
    walk(join(DIST, dir), (path) => {
      const base = relative(DIST, path).replace(/\.js(\.map)?$/, '');
      if (base === relative(DIST, path) || expected.has(base.split(sep).join('/'))) return;
      rmSync(path);
      removed++;
    });
  }

  for (const step of ['copy-assets.js', 'pglite-template.js']) {
    const result = run(join(__dirname, step), []);
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
    if (result.status !== 0) process.exit(result.status ?? 1);
  }
  writeFileSync(COMPLETE, `${new Date().toISOString()}\n`);
  process.stderr.write(
    `build: ${scripts.length} file(s) compiled, ${removed} stale removed, ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
}

main().catch((error) => {
  process.stderr.write(`build: ${error.stack ?? error}\n`);
  process.exit(1);
});
