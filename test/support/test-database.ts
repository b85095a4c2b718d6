import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { MIGRATIONS } from '@app/database';
import { migrationsFingerprint } from './pglite-template';

const ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** Arbitrary constant: serialises building the migrated template across jest processes. */
const TEMPLATE_LOCK_ID = 727_014;

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export interface TestDatabaseOptions {
  /**
   * 'empty' (the default): a database with nothing in it, for suites that run migrations
   * themselves. 'migrated': a copy of a database on which every migration has already run
   * (`CREATE DATABASE … TEMPLATE`, see migratedTemplate) — what a server finds on its second
   * start, and a fraction of the cost of migrating each suite's database anew.
   */
  schema?: 'empty' | 'migrated';
}

/** A brand-new database on the machine's PostgreSQL, so every suite starts from nothing (or from a fresh migrated copy). */
export async function createTestDatabase(prefix = 'smcp', options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const url = urlOf(name);
  if (options.schema === 'migrated') {
    const template = await migratedTemplate();
    await withAdmin((client) => client.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`));
    // Like the embedded template's copies (libs/database/src/embedded-postgres.ts): an identity of its own.
    await withClient(url, (client) => client.query(`UPDATE installation SET installation_id = gen_random_uuid(), installed_at = now()`));
  } else {
    await withAdmin((client) => client.query(`CREATE DATABASE "${name}"`));
  }
  return {
    url,
    name,
    drop: () => withAdmin((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}

let template: Promise<string> | undefined;

/**
 * The name of a database on which every migration has run, built once per set of migrations
 * (named by their fingerprint, so a changed or added migration makes a new one) by whichever
 * process asks first — the e2e projects' global setup, normally. Nothing stays connected to it
 * (CREATE DATABASE … TEMPLATE refuses a template with connections): it is migrated under a
 * building name and renamed when done.
 */
export function migratedTemplate(): Promise<string> {
  template ??= buildTemplate().catch((error) => {
    template = undefined;
    throw error;
  });
  return template;
}

async function buildTemplate(): Promise<string> {
  const name = `smcp_template_${migrationsFingerprint()}`;
  return withAdmin(async (admin) => {
    const exists = async () => (await admin.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [name])).rowCount === 1;
    if (await exists()) return name;
    await admin.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK_ID]);
    try {
      if (await exists()) return name;
      const building = `${name}_building`;
      await admin.query(`DROP DATABASE IF EXISTS "${building}" WITH (FORCE)`);
      await admin.query(`CREATE DATABASE "${building}"`);
      const dataSource = new DataSource({
        type: 'postgres',
        url: urlOf(building),
        migrations: MIGRATIONS,
        migrationsTableName: 'migrations',
        logging: false,
      });
      await dataSource.initialize();
      try {
        await dataSource.runMigrations({ transaction: 'each' });
      } finally {
        await dataSource.destroy();
      }
      await admin.query(`ALTER DATABASE "${building}" RENAME TO "${name}"`);
      await admin.query(`ALTER DATABASE "${name}" WITH IS_TEMPLATE true`);
      return name;
    } finally {
      await admin.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK_ID]);
    }
  });
}

function urlOf(database: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${database}`;
  return url.toString();
}

function withAdmin<T>(work: (client: Client) => Promise<T>): Promise<T> {
  return withClient(ADMIN_URL, work);
}

async function withClient<T>(connectionString: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}
