import { Client } from 'pg';
import { register } from 'tsconfig-paths';
import { compilerOptions } from '../../tsconfig.json';

/**
 * Fails fast, with a useful message, when the PostgreSQL the suites need is not there; then
 * prepares, once for the run, what every suite's server starts from: the migrated PostgreSQL
 * template database and the embedded database's template directory (see test-database.ts and
 * pglite-template.ts). Each suite still gets a database and a data directory of its own.
 */
export default async function globalSetup(): Promise<void> {
  const url = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new Error(`End-to-end suites need PostgreSQL at ${url} (set TEST_PG_ADMIN_URL): ${(error as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
  // Jest maps the @app/* aliases for suites, not for this hook: the templates' modules need them.
  const unregister = register({ baseUrl: `${__dirname}/../..`, paths: compilerOptions.paths });
  try {
    const { ensureSourcePgliteTemplate } = require('./pglite-template') as typeof import('./pglite-template');
    const { migratedTemplate } = require('./test-database') as typeof import('./test-database');
    await Promise.all([migratedTemplate(), ensureSourcePgliteTemplate()]);
  } finally {
    unregister();
  }
}
