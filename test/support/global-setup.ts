import { Client } from 'pg';

/**
 * Fails fast, with a useful message, when the PostgreSQL the suites need is not there.
 * Each suite then makes its own fresh database (see test-database.ts).
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
}
