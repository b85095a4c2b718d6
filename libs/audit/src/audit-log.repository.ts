import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import type { AuditResult, AuditSeverity } from './audit-entry';
import { AuditInsertRow, AuditRowContent, GENESIS_HASH } from './audit-hash';

/** An `audit_logs` row as the pg driver returns it (bigint as text, timestamptz as Date, jsonb parsed). */
export interface AuditLogRow {
  seq: string;
  id: string;
  timestamp: Date;
  user_id: string | null;
  action: string;
  resource: string | null;
  details: Record<string, unknown>;
  result: AuditResult;
  ip_address: string | null;
  user_agent: string | null;
  severity: AuditSeverity;
  metadata: Record<string, unknown>;
  prev_hash: string;
  hash: string;
  /** Keyed MAC of `hash`; null on rows written before the keyed chain. */
  mac: string | null;
}

/** Every column of `audit_logs`, in the order rows are read. */
export const AUDIT_LOGS_COLUMNS = [
  'seq',
  'id',
  'timestamp',
  'user_id',
  'action',
  'resource',
  'details',
  'result',
  'ip_address',
  'user_agent',
  'severity',
  'metadata',
  'prev_hash',
  'hash',
  'mac',
] as const;

const SELECTED = AUDIT_LOGS_COLUMNS.join(', ');

/** The hashed content of a stored row, in the writer's shape. */
export function auditRowContent(row: AuditLogRow): AuditRowContent {
  return {
    id: row.id,
    timestamp: new Date(row.timestamp).toISOString(),
    userId: row.user_id,
    action: row.action,
    resource: row.resource,
    details: row.details,
    result: row.result,
    ipAddress: row.ip_address,
    userAgent: row.user_agent,
    severity: row.severity,
    metadata: row.metadata,
  };
}

/** Advisory-lock key that serialises appends to the chain (held until the writer's transaction ends). */
export const AUDIT_CHAIN_LOCK_KEY = '4702893516120394117';

/**
 * Takes the chain lock inside a statement of the caller's (e.g. in a RETURNING list); see
 * AuditService.recordMany. The same statement must read AUDIT_CHAIN_ISOLATION_SQL and pass it to
 * assertChainLockIsolation.
 */
export const AUDIT_CHAIN_LOCK_SQL = `pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK_KEY})`;

/** The isolation level of the transaction taking the chain lock (select it beside AUDIT_CHAIN_LOCK_SQL). */
export const AUDIT_CHAIN_ISOLATION_SQL = `current_setting('transaction_isolation')`;

/**
 * The chain lock is only meaningful under READ COMMITTED: each statement after the lock then sees
 * every row committed before it. Under REPEATABLE READ or SERIALIZABLE the snapshot may predate
 * the lock, the head read is stale and the chain forks; such a transaction is refused (it rolls back).
 */
export function assertChainLockIsolation(isolation: unknown): void {
  if (isolation !== 'read committed') {
    throw new Error(`The audit chain lock must be taken in a READ COMMITTED transaction, not ${String(isolation)}`);
  }
}

/** The columns of an audit row's insert (AuditInsertRow's keys) and their types, in order. */
const AUDIT_INSERT_COLUMNS = [
  ['id', 'text'],
  ['timestamp', 'timestamptz'],
  ['user_id', 'text'],
  ['action', 'text'],
  ['resource', 'text'],
  ['details', 'jsonb'],
  ['result', 'text'],
  ['ip_address', 'text'],
  ['user_agent', 'text'],
  ['severity', 'text'],
  ['metadata', 'jsonb'],
  ['prev_hash', 'text'],
  ['hash', 'text'],
  ['mac', 'text'],
] as const;

const INSERT_NAMES = AUDIT_INSERT_COLUMNS.map(([name]) => name).join(', ');

/**
 * The one INSERT of audit rows: many at once, linked after an expected chain head: the rows as one
 * JSON array of AuditInsertRow objects ($1, expanded by json_to_recordset: one parameter that
 * JSON.stringify writes natively, instead of one array per column that pg's driver rendered
 * element by element in JS), then the expected head ($2) and GENESIS_HASH ($3). Inserts nothing (returns no row)
 * unless the table's head is still the expected one; rows go in array order, so `seq` follows the
 * chain. Only correct under the chain lock, taken in an earlier statement of the transaction (READ
 * COMMITTED: this statement's snapshot then sees every committed row).
 */
export const AUDIT_INSERT_LINKED_SQL = auditInsertLinkedSql();

/**
 * AUDIT_INSERT_LINKED_SQL with its parameters numbered from `$first` on and, given a `condition`
 * (SQL of the caller's, no parameters), inserting nothing unless that holds too: the body of a
 * WITH query beside the caller's own change (AuditService.linkedInsert).
 */
export function auditInsertLinkedSql(first = 1, condition?: string): string {
  return `INSERT INTO audit_logs (${INSERT_NAMES})
 SELECT ${INSERT_NAMES}
   FROM ROWS FROM (json_to_recordset($${first}::json) AS (${AUDIT_INSERT_COLUMNS.map(([name, type]) => `${name} ${type}`).join(', ')}))
        WITH ORDINALITY AS r(${INSERT_NAMES}, ord)
  WHERE COALESCE((SELECT h.hash FROM audit_logs h ORDER BY h.seq DESC LIMIT 1), $${first + 2}) = $${first + 1}${
    condition
      ? `
    AND ${condition}`
      : ''
  }
  ORDER BY ord
 RETURNING seq`;
}

/**
 * Parameters of AUDIT_INSERT_LINKED_SQL: rows from auditInsertRow (already linked one after
 * another), serialised together, then the head they were linked after.
 */
export function auditLinkedInsertParams(rows: AuditInsertRow[], expectedHead: string): unknown[] {
  return [JSON.stringify(rows), expectedHead, GENESIS_HASH];
}

/** Runs one parameterised statement and answers its rows (a DataSource's `query`, or a pg client's `.rows`). */
export type SqlRowsQuery = (sql: string, params: unknown[]) => Promise<unknown[]>;

/**
 * The rows after `afterSeq`, oldest first, at most `limit`: what the chain walk reads. Takes the
 * query function so the offline verifier (a bare pg client, no Nest) reads with the same SQL.
 */
export async function auditRowsAfter(query: SqlRowsQuery, afterSeq: string, limit: number): Promise<AuditLogRow[]> {
  return (await query(`SELECT ${SELECTED} FROM audit_logs WHERE seq > $1 ORDER BY seq LIMIT $2`, [afterSeq, limit])) as AuditLogRow[];
}

/**
 * Where the chain's statements run: a TypeORM transaction, or a transaction the caller opened
 * straight through pg (UnitOfWork.runSql), which is given only as its statements.
 */
export type AuditStatements = Pick<EntityManager, 'query'>;

/** An EntityManager (inside a transaction or not), as opposed to a caller's raw transaction. */
function isEntityManager(manager: EntityManager | AuditStatements): manager is EntityManager {
  return 'transaction' in manager;
}

/** Filters of the administrators' audit log listing. */
export interface AuditLogFilter {
  startDate?: string;
  endDate?: string;
  userId?: string;
  action?: string;
  severity?: string;
}

/**
 * The one home of `audit_logs` SQL: the chain lock, the linked insert, the head, the walk and the
 * listing. Writes take the caller's transaction manager, so a record commits with its change.
 */
@Injectable()
export class AuditLogRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Runs `work` in the caller's transaction (`callers`: true), or, given no manager or one
   * outside a transaction, in a new transaction (`callers`: false).
   */
  inTransaction<T>(
    manager: EntityManager | AuditStatements | undefined,
    work: (transactional: AuditStatements, callers: boolean) => Promise<T>,
  ): Promise<T> {
    if (manager && !isEntityManager(manager)) return work(manager, true);
    if (manager?.queryRunner?.isTransactionActive) return work(manager, true);
    return (manager ?? this.dataSource.manager).transaction((transactional) => work(transactional, false));
  }

  /** Takes the chain lock (until the transaction ends), refusing isolation levels that would fork the chain. */
  async lockChain(manager: AuditStatements): Promise<void> {
    const [lock]: Array<{ isolation: string }> = await manager.query(
      `SELECT pg_advisory_xact_lock($1), ${AUDIT_CHAIN_ISOLATION_SQL} AS isolation`,
      [AUDIT_CHAIN_LOCK_KEY],
    );
    assertChainLockIsolation(lock.isolation);
  }

  /** The hash of the newest row, or GENESIS_HASH for an empty chain. */
  async headHash(manager: AuditStatements): Promise<string> {
    const [head]: Array<{ hash: string }> = await manager.query(`SELECT hash FROM audit_logs ORDER BY seq DESC LIMIT 1`);
    return head?.hash ?? GENESIS_HASH;
  }

  /** Inserts rows (auditInsertRow each) linked after `expectedHead` if that is still the head; false (nothing inserted) if not. */
  async insertLinked(manager: AuditStatements, rows: AuditInsertRow[], expectedHead: string): Promise<boolean> {
    const inserted: unknown[] = await manager.query(AUDIT_INSERT_LINKED_SQL, auditLinkedInsertParams(rows, expectedHead));
    return inserted.length > 0;
  }

  /** See auditRowsAfter. */
  rowsAfter(afterSeq: string, limit: number): Promise<AuditLogRow[]> {
    return auditRowsAfter((sql, params) => this.dataSource.query(sql, params), afterSeq, limit);
  }

  /** One page of matching rows, newest first, and how many match in all. */
  async page(filter: AuditLogFilter, limit: number, offset: number): Promise<{ rows: AuditLogRow[]; total: number }> {
    const conditions: string[] = [];
    const params: unknown[] = [];
    const where = (sql: string, value: unknown) => {
      params.push(value);
      conditions.push(sql.replace('?', `$${params.length}`));
    };
    if (filter.startDate) where('timestamp >= ?::timestamptz', filter.startDate);
    if (filter.endDate) where('timestamp <= ?::timestamptz', filter.endDate);
    if (filter.userId) where('user_id = ?', filter.userId);
    if (filter.action) where('action = ?', filter.action);
    if (filter.severity) where('severity = ?', filter.severity);
    const matching = conditions.length ? `WHERE ${conditions.join(' AND ')}` : '';

    const [{ total }]: Array<{ total: string }> = await this.dataSource.query(
      `SELECT count(*) AS total FROM audit_logs ${matching}`,
      params,
    );
    const rows: AuditLogRow[] = await this.dataSource.query(
      `SELECT ${SELECTED} FROM audit_logs ${matching}
       ORDER BY timestamp DESC, seq DESC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
      [...params, limit, offset],
    );
    return { rows, total: Number(total) };
  }
}
