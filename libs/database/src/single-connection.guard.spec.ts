import type { DataSource } from 'typeorm';
import { enforceSingleConnection, outsideTransaction, SingleConnectionViolation } from './single-connection.guard';

type Callback = (error: Error | undefined, client: unknown, release: () => void) => void;

/** A pool of one connection and a manager that, like TypeORM's, takes it for the length of a transaction. */
function fakeDataSource() {
  let busy = false;
  const waiting: Callback[] = [];
  const release = () => {
    busy = false;
    const next = waiting.shift();
    if (next) grant(next);
  };
  const grant = (callback: Callback) => {
    busy = true;
    callback(undefined, {}, release);
  };
  const pool = { connect: (callback: Callback) => (busy ? waiting.push(callback) : grant(callback)) };
  const obtain = () =>
    new Promise<() => void>((resolve, reject) => pool.connect((error, _client, done) => (error ? reject(error) : resolve(done))));
  const dataSource = {
    driver: { master: pool },
    manager: {
      async transaction(work: (manager: unknown) => Promise<unknown>) {
        const done = await obtain();
        try {
          return await work({});
        } finally {
          done();
        }
      },
    },
    /** A statement on the pool, outside any transaction's connection. */
    async query(): Promise<string> {
      const done = await obtain();
      done();
      return 'ok';
    },
  };
  return { dataSource, pool };
}

describe('enforceSingleConnection', () => {
  it('refuses a pool lookup made inside a transaction instead of waiting forever', async () => {
    const { dataSource } = fakeDataSource();
    enforceSingleConnection(dataSource as unknown as DataSource);
    await expect(dataSource.manager.transaction(() => dataSource.query())).rejects.toBeInstanceOf(SingleConnectionViolation);
  });

  it('refuses a nested transaction', async () => {
    const { dataSource } = fakeDataSource();
    enforceSingleConnection(dataSource as unknown as DataSource);
    await expect(dataSource.manager.transaction(() => dataSource.manager.transaction(async () => 'inner'))).rejects.toThrow(
      'The embedded database has a single connection',
    );
  });

  it('lets transactions and lookups run one after another, and lookups after a transaction ended', async () => {
    const { dataSource } = fakeDataSource();
    enforceSingleConnection(dataSource as unknown as DataSource);
    let later: Promise<string> | undefined;
    const result = await dataSource.manager.transaction(async () => {
      // Scheduled by the transaction, run after it: not part of it.
      later = new Promise((resolve) => setImmediate(() => resolve(dataSource.query())));
      return 'committed';
    });
    expect(result).toBe('committed');
    await expect(later).resolves.toBe('ok');
    await expect(dataSource.query()).resolves.toBe('ok');
    await expect(
      Promise.all([dataSource.manager.transaction(async () => 1), dataSource.manager.transaction(async () => 2)]),
    ).resolves.toEqual([1, 2]);
  });

  it('lets work started outside the transaction on purpose wait for the connection', async () => {
    const { dataSource } = fakeDataSource();
    enforceSingleConnection(dataSource as unknown as DataSource);
    let detached: Promise<string> | undefined;
    await dataSource.manager.transaction(async () => {
      detached = outsideTransaction(() => dataSource.query());
    });
    await expect(detached).resolves.toBe('ok');
  });
});
