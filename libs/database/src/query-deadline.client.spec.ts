import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';
import { PostgresBreaker } from './postgres-breaker';
import { clientWithQueryDeadline } from './query-deadline.client';

/** The machine's PostgreSQL (trust); the table is this spec's own and dropped at the end. */
const URL = 'postgres://postgres@127.0.0.1:5432/postgres';

describe('the pool client with the outage breaker (real PostgreSQL)', () => {
  const table = `breaker_spec_${randomBytes(4).toString('hex')}`;
  const admin = new Pool({ connectionString: URL, max: 1 });
  beforeAll(() => admin.query(`CREATE TABLE ${table} (n int)`));
  afterAll(async () => {
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
    await admin.end();
  });

  it('on opening drops a transaction in flight (rolled back), then fails at once until proven', async () => {
    const breaker = new PostgresBreaker();
    const pool = new Pool({ connectionString: URL, max: 2, Client: clientWithQueryDeadline(5_000, breaker) });
    pool.on('error', () => undefined);
    try {
      const client = await pool.connect();
      client.on('error', () => undefined);
      await client.query('BEGIN');
      await client.query(`INSERT INTO ${table} VALUES (1)`);
      breaker.failed('test: no answer to the heartbeat');
      await expect(client.query('COMMIT')).rejects.toThrow();
      client.release(true);

      // The breaker's own refusal (not a connect attempt's timeout or error): it did not try the database.
      const refused = await pool.query('SELECT 1').catch((error: unknown) => error as Error & { code?: string });
      expect({ name: (refused as Error).name, code: (refused as { code?: string }).code }).toEqual({
        name: 'PostgresUnavailableError',
        code: '08006',
      });

      breaker.proven();
      expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      // Nothing of the dropped transaction was committed.
      expect((await admin.query(`SELECT count(*)::int AS n FROM ${table}`)).rows).toEqual([{ n: 0 }]);
    } finally {
      await pool.end();
    }
  });

  it('a connection attempt refused opens the breaker; a server error does not', async () => {
    const breaker = new PostgresBreaker();
    const wrongDatabase = new Pool({
      connectionString: `${URL}_missing_${table}`,
      max: 1,
      Client: clientWithQueryDeadline(undefined, breaker),
    });
    await expect(wrongDatabase.query('SELECT 1')).rejects.toMatchObject({ code: '3D000' });
    await wrongDatabase.end();
    expect(breaker.isOpen).toBe(false);

    const closedPort = new Pool({
      connectionString: 'postgres://postgres@127.0.0.1:1/postgres',
      max: 1,
      Client: clientWithQueryDeadline(undefined, breaker),
    });
    await expect(closedPort.query('SELECT 1')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await closedPort.end();
    expect({ open: breaker.isOpen, reason: breaker.openReason }).toEqual({
      open: true,
      reason: expect.stringMatching(/^cannot connect: .*ECONNREFUSED/),
    });
  });
});
