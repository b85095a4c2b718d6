// Builds the embedded database's starting data directory into dist/ (npm run build): PGlite's
// initdb and the migrations cost seconds at a fresh DATA_DIR's first start, and so does unpacking
// a dump of them (loadDataDir); copying this directory, initdb'd and migrated, costs a fraction.
// The server still runs any migration the copy lacks. Cached under .cache/ per PGlite version and
// per content of the compiled migrations, so a build pays for it only when one of them changed.
// The end-to-end suites build the same directory from the TypeScript migrations (buildDataDir,
// called by test/support/pglite-template.ts), so their embedded servers start the way a built one does.
const { createHash } = require('node:crypto');
const { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs');
const { basename, dirname, join } = require('node:path');

const root = join(__dirname, '..');
// Read by libs/database/src/embedded-postgres.ts (next to its compiled directory).
const TARGET = join(root, 'dist', 'libs', 'database', 'pglite-template');
const MIGRATIONS_DIR = join(root, 'dist', 'libs', 'database', 'src', 'migrations');

/** TypeORM's own bookkeeping table (as its PostgreSQL driver creates it), so it sees them applied. */
const MIGRATIONS_TABLE = `CREATE TABLE "migrations" ("id" SERIAL NOT NULL, "timestamp" bigint NOT NULL, "name" character varying NOT NULL, CONSTRAINT "PK_8c82d7f526340ab734260ea46be" PRIMARY KEY ("id"))`;

function migrationsHash() {
  const hash = createHash('sha256');
  for (const file of readdirSync(MIGRATIONS_DIR)
    .filter((name) => name.endsWith('.js'))
    .sort()) {
    hash.update(file).update(readFileSync(join(MIGRATIONS_DIR, file)));
  }
  return hash.digest('hex').slice(0, 16);
}

/** Applies every migration as TypeORM would: one transaction each, recorded in "migrations". */
async function migrate(db, MIGRATIONS) {
  await db.exec(MIGRATIONS_TABLE);
  for (const Migration of MIGRATIONS) {
    const migration = new Migration();
    const name = migration.name ?? Migration.name;
    const timestamp = Number(name.slice(-13));
    if (!Number.isSafeInteger(timestamp)) throw new Error(`migration ${name} has no timestamp`);
    await db.transaction(async (tx) => {
      // The migrations speak to TypeORM's query runner: plain SQL (several statements) or one with parameters.
      const runner = {
        query: async (sql, parameters) =>
          parameters && parameters.length > 0 ? (await tx.query(sql, parameters)).rows : ((await tx.exec(sql)).at(-1)?.rows ?? []),
      };
      await migration.up(runner);
      await tx.query('INSERT INTO "migrations" ("timestamp", "name") VALUES ($1, $2)', [timestamp, name]);
    });
  }
}

function pgliteVersion() {
  return JSON.parse(readFileSync(join(dirname(require.resolve('@electric-sql/pglite')), '..', 'package.json'), 'utf8')).version;
}

/** initdb and every migration into `target` (built beside it and renamed, so it is there whole or not at all). */
async function buildDataDir(target, MIGRATIONS) {
  const { PGlite } = require('@electric-sql/pglite');
  const building = `${target}.${process.pid}.tmp`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(dirname(building), { recursive: true });
  const db = await PGlite.create(building);
  await migrate(db, MIGRATIONS);
  await db.close();
  renameSync(building, target);
}

async function main() {
  const cached = join(root, '.cache', `pglite-template-${pgliteVersion()}-${migrationsHash()}`);
  if (!existsSync(cached)) await buildDataDir(cached, require(join(MIGRATIONS_DIR, 'index.js')).MIGRATIONS);
  // Already this template (an unchanged rebuild): leave it, a copy costs seconds of a restart.
  const stamp = `${TARGET}.stamp`;
  if (existsSync(join(TARGET, 'PG_VERSION')) && existsSync(stamp) && readFileSync(stamp, 'utf8') === basename(cached)) return;
  rmSync(stamp, { force: true });
  rmSync(TARGET, { recursive: true, force: true });
  mkdirSync(dirname(TARGET), { recursive: true });
  cpSync(cached, TARGET, { recursive: true });
  writeFileSync(stamp, basename(cached));
}

module.exports = { buildDataDir, pgliteVersion };

if (require.main === module) {
  main().catch((error) => {
    process.stderr.write(`pglite-template: ${error.stack ?? error}\n`);
    process.exit(1);
  });
}
