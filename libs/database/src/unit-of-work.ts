import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { escapeLiteral } from 'pg';
import type { PoolClient, QueryResult } from 'pg';
import { TRACED_QUERY_TEXT } from '@app/telemetry';

/**
 * An open transaction. Repositories run their SQL on it; services only pass it along (to
 * repositories and to AuditService.record), so a change and its audit record commit together.
 */
export type Transaction = EntityManager;

/**
 * A statement sent with BEGIN, in its round trip (UnitOfWork.runSql's `withBegin`): SQL alone, or
 * SQL whose only `$` are its placeholders `$1`, `$2`... and their values, text or NULL. A query of
 * several statements goes over pg's simple protocol, which takes no parameters: the values are
 * written into the SQL as literals by pg's own escapeLiteral.
 */
export type BegunStatement = string | { sql: string; params: ReadonlyArray<string | null> };

/** The SQL of a BegunStatement, its values as literals (pg's escapeLiteral). */
export function inlinedSql(statement: BegunStatement): string {
  if (typeof statement === 'string') return statement;
  const { sql, params } = statement;
  return sql.replace(/\$(\d+)/g, (_placeholder, number: string) => {
    const index = Number(number) - 1;
    if (!(index in params)) throw new Error(`No value for placeholder $${number}`);
    const value = params[index];
    if (value === null) return 'NULL';
    // escapeLiteral turns anything but a string into '' (quietly); a NUL would end the query text early.
    if (typeof value !== 'string') throw new Error(`The value of $${number} is not text`);
    if (value.includes('\0')) throw new Error(`The value of $${number} contains a NUL character`);
    return escapeLiteral(value);
  });
}

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

  async query<T = any>(sql: string, parameters?: unknown[]): Promise<T> {
    const result = await this.send(sql, parameters);
    return (Array.isArray(result) ? result[result.length - 1] : result).rows as T;
  }

  /**
   * Statements sent as one simple-protocol query (one round trip), their values inlined as literals
   * (inlinedSql): each one's rows, in order. A trace records their parameterised SQL, not the values.
   * @internal
   */
  async queryAll(statements: BegunStatement[]): Promise<unknown[][]> {
    const sql = statements.map(inlinedSql).join(';\n');
    const parameterised = statements.map((statement) => (typeof statement === 'string' ? statement : statement.sql)).join(';\n');
    const result = await this.send(
      sql === parameterised ? sql : { text: sql, [TRACED_QUERY_TEXT]: parameterised },
      undefined,
      parameterised,
    );
    return (Array.isArray(result) ? result : [result]).map((answer) => answer.rows);
  }

  /** `logged`: the SQL the logger is given (it logs neither SQL nor values, but another logger might). */
  private async send(
    query: string | { text: string; [TRACED_QUERY_TEXT]?: string },
    parameters?: unknown[],
    logged = query as string,
  ): Promise<QueryResult | QueryResult[]> {
    const started = Date.now();
    try {
      // pg answers a simple query of several statements (no parameters) with one result per statement.
      const result = (await this.client.query(query, parameters)) as QueryResult | QueryResult[];
      const took = Date.now() - started;
      const slow = this.dataSource.options.maxQueryExecutionTime;
      if (slow && took > slow) this.dataSource.logger.logQuerySlow(took, logged, parameters);
      return result;
    } catch (error) {
      this.dataSource.logger.logQueryError(error as Error, logged, parameters);
      throw error;
    }
  }
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
   * `withBegin`: statements sent with BEGIN, in its round trip (e.g. taking a lock, then a first
   * write), their values as literals (BegunStatement); `work` gets each one's rows, in order. One
   * that fails fails the transaction (the statements after it do not run; it rolls back).
   */
  async runSql<T>(
    work: (tx: SqlTransaction, begun: unknown[][]) => Promise<T>,
    options: { withBegin?: BegunStatement[] } = {},
  ): Promise<T> {
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
      const [, ...begun] = await tx.queryAll(['BEGIN', ...(options.withBegin ?? [])]);
      const result = await work(tx, begun);
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
