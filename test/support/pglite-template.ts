import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MIGRATIONS } from '@app/database';

/**
 * The embedded database's starting data directory for servers run from source (the suites).
 *
 * A built server starts a fresh DATA_DIR from a copy of dist/libs/database/pglite-template, made
 * by `npm run build` (scripts/pglite-template.js), instead of running PGlite's initdb and every
 * migration: that is seconds of CPU per start (measured: initdb alone ~13 s of CPU on this machine,
 * the copy and open ~2 s). Run from source, libs/database/src/embedded-postgres.ts looks for the
 * same directory at libs/database/pglite-template and, when it is absent, runs initdb. The global
 * setup puts it there, built by the same script from the TypeScript migrations, so every suite's
 * embedded server starts exactly as a built one does ("new, from the template"), and the suites
 * stop paying for initdb on each of their ~50 embedded starts.
 *
 * Rebuilt when a migration or the PGlite version changes (the stamp beside it names both); the
 * server still applies any migration a copy lacks, as in production.
 */
const LIBS_DATABASE = join(__dirname, '..', '..', 'libs', 'database');
/** Where embedded-postgres.ts (libs/database/src) looks: join(__dirname, '..', 'pglite-template'). */
export const SOURCE_PGLITE_TEMPLATE = join(LIBS_DATABASE, 'pglite-template');

interface TemplateScript {
  buildDataDir(target: string, migrations: unknown[]): Promise<void>;
  pgliteVersion(): string;
}
// A plain Node script (the build runs it on dist/); its two exports are typed above.
const script: TemplateScript = require('../../scripts/pglite-template.js');

/** Names the migrations' source and the PGlite version, so a change to either rebuilds the directory. */
export function migrationsFingerprint(): string {
  const dir = join(LIBS_DATABASE, 'src', 'migrations');
  const hash = createHash('sha256');
  for (const file of readdirSync(dir)
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.spec.ts'))
    .sort()) {
    hash.update(file).update(readFileSync(join(dir, file)));
  }
  return hash.digest('hex').slice(0, 16);
}

export async function ensureSourcePgliteTemplate(): Promise<void> {
  const stampFile = `${SOURCE_PGLITE_TEMPLATE}.stamp`;
  const stamp = `src-${script.pgliteVersion()}-${migrationsFingerprint()}`;
  if (existsSync(join(SOURCE_PGLITE_TEMPLATE, 'PG_VERSION')) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) return;
  const built = `${SOURCE_PGLITE_TEMPLATE}.${process.pid}`;
  rmSync(built, { recursive: true, force: true });
  await script.buildDataDir(built, MIGRATIONS);
  rmSync(stampFile, { force: true });
  rmSync(SOURCE_PGLITE_TEMPLATE, { recursive: true, force: true });
  renameSync(built, SOURCE_PGLITE_TEMPLATE);
  writeFileSync(stampFile, stamp);
}
