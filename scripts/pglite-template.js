// Builds the embedded database's starting data directory into dist/ (npm run build): PGlite's
// initdb costs seconds at a fresh DATA_DIR's first start, loading this copy costs a fraction.
// Cached per PGlite version under .cache/, so only the first build pays for the initdb.
const { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } = require('node:fs');
const { dirname, join } = require('node:path');

const root = join(__dirname, '..');
// Read by libs/database/src/embedded-postgres.ts (next to its compiled directory).
const TARGET = join(root, 'dist', 'libs', 'database', 'pglite-template.tar.gz');

async function main() {
  const { version } = JSON.parse(readFileSync(join(dirname(require.resolve('@electric-sql/pglite')), '..', 'package.json'), 'utf8'));
  const cached = join(root, '.cache', `pglite-template-${version}.tar.gz`);
  if (!existsSync(cached)) {
    const { PGlite } = require('@electric-sql/pglite');
    // In memory: nothing but the dump touches the disk.
    const db = await PGlite.create();
    const tarball = Buffer.from(await (await db.dumpDataDir('gzip')).arrayBuffer());
    await db.close();
    mkdirSync(dirname(cached), { recursive: true });
    writeFileSync(`${cached}.tmp`, tarball);
    renameSync(`${cached}.tmp`, cached);
  }
  mkdirSync(dirname(TARGET), { recursive: true });
  copyFileSync(cached, TARGET);
}

main().catch((error) => {
  process.stderr.write(`pglite-template: ${error.stack ?? error}\n`);
  process.exit(1);
});
