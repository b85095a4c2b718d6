import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { UnitOfWork } from '@app/database';
import { DATABASE_KINDS, startTestApp, TestApp } from '../support/test-app';
import { createTestDatabase, TestDatabase } from '../support/test-database';

/** Text that quoting gets wrong when it can: quotes, backslashes (an E'' literal), JSON escapes, newlines, non-ASCII. */
const AWKWARD = `it's a "quote", a backslash \\ and \\" and \\u0041, a newline\n, é 漢字 😀, $1 and $$ and ;`;

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

  it('sends statements with BEGIN in its round trip, their values as literals, and gives each one its rows', async () => {
    const answer = await unitOfWork.runSql(
      async (tx, begun) => {
        await tx.query('INSERT INTO uow_items (id) VALUES ($1)', ['g']);
        return begun;
      },
      {
        withBegin: [
          `SELECT current_setting('transaction_isolation') AS isolation`,
          { sql: 'INSERT INTO uow_items (id) VALUES ($1), ($2) RETURNING id', params: [AWKWARD, 'h'] },
          { sql: `SELECT $1::json ->> 'text' AS text, $2::text IS NULL AS missing`, params: [JSON.stringify({ text: AWKWARD }), null] },
        ],
      },
    );
    expect(answer).toEqual([[{ isolation: 'read committed' }], [{ id: AWKWARD }, { id: 'h' }], [{ text: AWKWARD, missing: true }]]);
    expect(await ids()).toEqual(expect.arrayContaining([AWKWARD, 'g', 'h']));
    await dataSource.query('DELETE FROM uow_items WHERE id = ANY($1)', [[AWKWARD, 'g', 'h']]);
  });

  it('rolls back everything when a statement sent with BEGIN fails; the statements after it do not run', async () => {
    const work = jest.fn();
    await expect(
      unitOfWork.runSql(work, {
        withBegin: [
          { sql: 'INSERT INTO uow_items (id) VALUES ($1)', params: ['i'] },
          { sql: 'INSERT INTO uow_items (id) VALUES ($1)', params: ['a'] },
          { sql: 'INSERT INTO uow_items (id) VALUES ($1)', params: ['j'] },
        ],
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(work).not.toHaveBeenCalled();
    expect(await ids()).toEqual(['a', 'c']);
  });

  it('a statement after a lock in the same simple query sees the rows committed while it waited for the lock (READ COMMITTED)', async () => {
    const LOCK = 'SELECT pg_advisory_xact_lock(727015)';
    const other = new Client({ connectionString: database.url });
    await other.connect();
    try {
      // Another connection holds the lock (as another replica's group commit would) and writes a row under it.
      await other.query(`BEGIN; ${LOCK}`);
      await other.query(`INSERT INTO uow_items (id) VALUES ('late')`);
      const seen = unitOfWork.runSql(async (_tx, [, [row]]) => row, {
        withBegin: [LOCK, { sql: 'SELECT count(*)::int AS n FROM uow_items WHERE id = $1', params: ['late'] }],
      });
      // Our transaction is waiting for the lock (its BEGIN ran: a snapshot was possible before the other commit).
      await until(async () => {
        const [{ waiting }] = await other
          .query<{ waiting: number }>(
            `SELECT count(*)::int AS waiting FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid <> pg_backend_pid()`,
          )
          .then((r) => r.rows);
        return waiting === 1;
      });
      await other.query('COMMIT');
      expect(await seen).toEqual({ n: 1 });
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
});

/** Polls `condition` (every 20 ms, up to 5 s). */
async function until(condition: () => Promise<boolean>): Promise<void> {
  for (let tries = 0; tries < 250; tries++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('condition not met within 5 s');
}

/**
 * The same on the server's own pool, on both databases: on the embedded one (PGlite behind its
 * socket server, one connection) the statements sent with BEGIN reach one backend as one simple
 * query too, each answered with its rows. (There, no other transaction can commit while one is
 * open: the pool has one connection, see embedded-postgres.ts.)
 */
describe.each(DATABASE_KINDS)('UnitOfWork.runSql on the server (%s)', (kind) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp(kind);
  });
  afterAll(() => t?.close());

  it('takes the audit chain lock and writes literal values with BEGIN, in READ COMMITTED, the values intact', async () => {
    const answer = await t.app.get(UnitOfWork).runSql(async (_tx, begun) => begun, {
      withBegin: [
        `SELECT pg_advisory_xact_lock(727016), current_setting('transaction_isolation') AS isolation`,
        {
          sql: `SELECT r.text FROM json_to_recordset($1::json) AS r(text text) WHERE $2 = $3`,
          params: [JSON.stringify([{ text: AWKWARD }, { text: 'second' }]), 'same', 'same'],
        },
      ],
    });
    expect(answer).toEqual([[{ pg_advisory_xact_lock: '', isolation: 'read committed' }], [{ text: AWKWARD }, { text: 'second' }]]);
  });
});
