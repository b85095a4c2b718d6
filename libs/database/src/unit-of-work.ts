import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import type { PoolClient, QueryResult } from 'pg';

/**
 * An open transaction. Repositories run their SQL on it; services only pass it along (to
 * repositories and to AuditService.record), so a change and its audit record commit together.
 */
export type Transaction = EntityManager;

/**
 * A READ COMMITTED transaction on one pooled pg connection, without TypeORM's query runner (its
 * events, result wrapping and error wrapping per statement): for the hottest writer, the tool
 * pipeline's group commit. `query` answers the statement's rows, whatever its kind (returnedRows
 * reads both this and an EntityManager's answers); failures and slow statements are logged as
 * TypeORM's own are (never the SQL or its parameters).
 */
export class SqlTransaction {
  /** @internal */
  constructor(
    private readonly client: PoolClient,
    private readonly dataSource: DataSource,
  ) {}

  /**
   * `prepared`: the statement is one of the caller's fixed texts, run often: it is prepared once per
   * connection (a named statement) and then only bound and executed, so PostgreSQL neither parses nor
   * plans it again (and its text is not sent again).
   */
  async query<T = any>(sql: string, parameters?: unknown[], options?: { prepared?: boolean }): Promise<T> {
    const result = await this.send(sql, parameters, options?.prepared === true);
    return (Array.isArray(result) ? result[result.length - 1] : result).rows as T;
  }

  private async send(sql: string, parameters: unknown[] | undefined, prepared: boolean): Promise<QueryResult | QueryResult[]> {
    const started = Date.now();
    try {
      // pg answers a simple query of several statements (no parameters) with one result per statement.
      const result = (await (prepared
        ? this.client.query({ name: preparedName(sql), text: sql, values: parameters })
        : this.client.query(sql, parameters))) as QueryResult | QueryResult[];
      const took = Date.now() - started;
      const slow = this.dataSource.options.maxQueryExecutionTime;
      if (slow && took > slow) this.dataSource.logger.logQuerySlow(took, sql, parameters);
      return result;
    } catch (error) {
      this.dataSource.logger.logQueryError(error as Error, sql, parameters);
      throw error;
    }
  }
}

/** Names of the prepared statements (SqlTransaction.query's `prepared`), by their text: the same on every connection. */
const preparedNames = new Map<string, string>();

function preparedName(sql: string): string {
  let name = preparedNames.get(sql);
  if (name === undefined) preparedNames.set(sql, (name = `smcp_tx_${preparedNames.size + 1}`));
  return name;
}

/** Opens transactions for services, which never hold the DataSource themselves. */
@Injectable()
export class UnitOfWork {
  constructor(private readonly dataSource: DataSource) {}

  /** Runs `work` in one READ COMMITTED transaction: commits when it resolves, rolls back when it throws. */
  run<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(work);
  }

  /**
   * As run(), on a connection of the same pool (so the outage breaker, the query deadline and
   * the statement spans apply) but straight through pg: BEGIN, `work`, COMMIT (ROLLBACK when it
   * throws; a connection that cannot even roll back is discarded, not returned to the pool).
   * `withBegin`: a statement without parameters sent with BEGIN, in its round trip (e.g. taking a
   * lock); `work` gets its rows.
   */
  async runSql<T>(work: (tx: SqlTransaction, begun: unknown[]) => Promise<T>, options: { withBegin?: string } = {}): Promise<T> {
    const [client, release] = (await (this.dataSource.driver as unknown as MasterPool).obtainMasterConnection()) as [
      PoolClient,
      (error?: unknown) => void,
    ];
    // Checked out, a pg client has no 'error' listener of the pool's: one of ours, as TypeORM's query
    // runner adds, or a connection dropped mid-transaction (database cut, breaker) crashes the process.
    // The failure itself reaches `work` through its pending query.
    let broken: unknown;
    const onError = (error: unknown) => {
      broken ??= error;
    };
    client.on('error', onError);
    const tx = new SqlTransaction(client, this.dataSource);
    try {
      const begun = await tx.query<unknown[]>(options.withBegin ? `BEGIN; ${options.withBegin}` : 'BEGIN');
      const result = await work(tx, options.withBegin ? begun : []);
      await tx.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollback: unknown) => (broken = rollback));
      throw error;
    } finally {
      client.removeListener('error', onError);
      release(broken);
    }
  }
}

/** What TypeORM's Postgres driver offers to take a connection of its pool (as its query runners do). */
interface MasterPool {
  obtainMasterConnection(): Promise<[unknown, (error?: unknown) => void]>;
}
