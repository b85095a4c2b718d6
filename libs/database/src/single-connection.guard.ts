import { AsyncLocalStorage } from 'node:async_hooks';
import type { DataSource, EntityManager } from 'typeorm';

/** What a transaction started through the data source holds: its one pooled connection, once connected. */
interface TransactionScope {
  holding: boolean;
  /** The transaction is over: work it scheduled and that runs later is not part of it. */
  done: boolean;
}

type ConnectCallback = (error: Error | undefined, client: unknown, release: (error?: unknown) => void) => void;

interface Pool {
  connect(callback?: ConnectCallback): unknown;
}

export class SingleConnectionViolation extends Error {
  constructor() {
    super(
      'The embedded database has a single connection, and this transaction holds it: a nested dataSource.transaction, ' +
        'or a dataSource.query / repository lookup made inside a transaction, would wait for it forever. Use the ' +
        "transaction's EntityManager for every statement inside it.",
    );
    this.name = 'SingleConnectionViolation';
  }
}

const scopes = new AsyncLocalStorage<TransactionScope>();

/**
 * Development and tests with the embedded database (one connection): a second connection asked
 * of the pool from inside a transaction started through `dataSource.transaction` (or its manager)
 * fails at once with SingleConnectionViolation, instead of deadlocking the process. Work that is
 * meant to run after the transaction (not awaited by it) starts outside it: `outsideTransaction`.
 */
export function enforceSingleConnection(dataSource: DataSource): void {
  const manager = dataSource.manager;
  const transaction = manager.transaction.bind(manager) as (...args: unknown[]) => Promise<unknown>;
  manager.transaction = ((...args: unknown[]) => {
    if (scopes.getStore()?.holding) return Promise.reject(new SingleConnectionViolation());
    const scope: TransactionScope = { holding: false, done: false };
    return scopes.run(scope, () => transaction(...args)).finally(() => (scope.done = true));
  }) as EntityManager['transaction'];

  const pool = (dataSource.driver as unknown as { master: Pool }).master;
  const connect = pool.connect.bind(pool);
  pool.connect = (callback?: ConnectCallback): unknown => {
    const scope = scopes.getStore();
    if (!scope || scope.done) return connect(callback);
    if (scope.holding) {
      const violation = new SingleConnectionViolation();
      if (callback) {
        process.nextTick(() => callback(violation, undefined, () => undefined));
        return undefined;
      }
      return Promise.reject(violation);
    }
    if (!callback) throw new Error('enforceSingleConnection: only the callback form of pool.connect (TypeORM) is supported');
    // The transaction's own connection.
    return connect((error, client, release) => {
      if (error) return callback(error, client, release);
      scope.holding = true;
      callback(error, client, (releaseError?: unknown) => {
        scope.holding = false;
        release(releaseError);
      });
    });
  };
}

/** Runs `work` as if no transaction were open (for work a transaction starts but does not wait for). */
export function outsideTransaction<T>(work: () => T): T {
  return scopes.exit(work);
}
