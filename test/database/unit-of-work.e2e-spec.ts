import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { UnitOfWork } from '@app/database';
import { createTestDatabase, TestDatabase } from '../support/test-database';

/**
 * UnitOfWork.runSql, the group commit's transaction straight through pg, on a real PostgreSQL:
 * its statements commit together or not at all, under READ COMMITTED, and its connection goes
 * back to the pool either way (the pool here has one, so a leaked connection would hang the next).
 */
describe('UnitOfWork.runSql: a transaction on a pooled pg connection', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let unitOfWork: UnitOfWork;

  beforeAll(async () => {
    database = await createTestDatabase('smcp_uow');
    dataSource = new DataSource({ type: 'postgres', url: database.url, logging: false, extra: { max: 1 } });
    await dataSource.initialize();
    await dataSource.query('CREATE TABLE uow_items (id text PRIMARY KEY)');
    unitOfWork = new UnitOfWork(dataSource);
  });

  afterAll(async () => {
    await dataSource?.destroy();
    await database?.drop();
  });

  const ids = async () => ((await dataSource.query('SELECT id FROM uow_items ORDER BY id')) as Array<{ id: string }>).map((r) => r.id);

  it('commits every statement of the work, answers rows for every kind of statement, in READ COMMITTED', async () => {
    const answer = await unitOfWork.runSql(async (tx) => {
      const inserted = await tx.query<Array<{ id: string }>>('INSERT INTO uow_items (id) VALUES ($1), ($2) RETURNING id', ['a', 'b']);
      const updated = await tx.query<Array<{ id: string }>>('UPDATE uow_items SET id = $1 WHERE id = $2 RETURNING id', ['c', 'b']);
      const [isolation] = await tx.query<Array<{ level: string }>>(`SELECT current_setting('transaction_isolation') AS level`);
      return { inserted, updated, isolation: isolation.level };
    });
    expect(answer).toEqual({ inserted: [{ id: 'a' }, { id: 'b' }], updated: [{ id: 'c' }], isolation: 'read committed' });
    expect(await ids()).toEqual(['a', 'c']);
  });

  it('rolls back everything when the work throws, and the connection serves the next transaction', async () => {
    await expect(
      unitOfWork.runSql(async (tx) => {
        await tx.query('INSERT INTO uow_items (id) VALUES ($1)', ['d']);
        throw new Error('the work failed');
      }),
    ).rejects.toThrow('the work failed');
    expect(await ids()).toEqual(['a', 'c']);
  });

  it('a statement after the lock sent with BEGIN sees the rows committed while it waited for the lock (READ COMMITTED)', async () => {
    // What the audit chain rests on: the group commit takes the chain lock with BEGIN, and its next statement reads the head.
    const LOCK = 'SELECT pg_advisory_xact_lock(727015)';
    const other = new Client({ connectionString: database.url });
    await other.connect();
    try {
      // Another connection holds the lock (as another replica's group commit would) and writes a row under it.
      await other.query(`BEGIN; ${LOCK}`);
      await other.query(`INSERT INTO uow_items (id) VALUES ('late')`);
      const seen = unitOfWork.runSql(
        (tx) => tx.query<Array<{ n: number }>>('SELECT count(*)::int AS n FROM uow_items WHERE id = $1', ['late']),
        {
          withBegin: LOCK,
        },
      );
      // Our transaction has begun and waits for the lock: a snapshot taken before the other commit would miss the row.
      await until(async () => {
        const { rows } = await other.query<{ waiting: number }>(
          `SELECT count(*)::int AS waiting FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid <> pg_backend_pid()`,
        );
        return rows[0].waiting === 1;
      });
      await other.query('COMMIT');
      expect(await seen).toEqual([{ n: 1 }]);
    } finally {
      await other.end();
      await dataSource.query(`DELETE FROM uow_items WHERE id = 'late'`);
    }
  });

  it('rolls back when a statement fails (the database refused a value), with the driver error as it came', async () => {
    await expect(
      unitOfWork.runSql(async (tx) => {
        await tx.query('INSERT INTO uow_items (id) VALUES ($1)', ['e']);
        await tx.query('INSERT INTO uow_items (id) VALUES ($1)', ['a']);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(await ids()).toEqual(['a', 'c']);
    await unitOfWork.runSql((tx) => tx.query('INSERT INTO uow_items (id) VALUES ($1)', ['f']));
    expect(await ids()).toEqual(['a', 'c', 'f']);
  });

  it('runs a prepared statement as one named statement of the connection, parsed once, with the values of each call', async () => {
    const sql = 'INSERT INTO uow_items (id) SELECT unnest($1::text[]) RETURNING id';
    const prepared = () =>
      dataSource.query(`SELECT name, statement FROM pg_prepared_statements WHERE statement = $1`, [sql]) as Promise<
        Array<{ name: string; statement: string }>
      >;
    const first = await unitOfWork.runSql((tx) => tx.query(sql, [['g', 'h']], { prepared: true }));
    // The pool has one connection: the statement it prepared is that connection's, and the next call binds it again.
    const [statement] = await prepared();
    expect(statement?.name).toMatch(/^smcp_tx_\d+$/);
    const second = await unitOfWork.runSql((tx) => tx.query(sql, [['i']], { prepared: true }));
    expect({ first, second }).toEqual({ first: [{ id: 'g' }, { id: 'h' }], second: [{ id: 'i' }] });
    expect(await prepared()).toEqual([statement]);
    // A prepared statement that fails rolls back its transaction like any other.
    await expect(unitOfWork.runSql((tx) => tx.query(sql, [['j', 'a']], { prepared: true }))).rejects.toMatchObject({ code: '23505' });
    expect(await ids()).toEqual(['a', 'c', 'f', 'g', 'h', 'i']);
  });
});

/** Polls `condition` (every 20 ms, up to 5 s). */
async function until(condition: () => Promise<boolean>): Promise<void> {
  for (let tries = 0; tries < 250; tries++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('condition not met within 5 s');
}
