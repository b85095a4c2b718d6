import { createHash, createHmac } from 'node:crypto';
import type { AuditResult, AuditSeverity } from './audit-entry';

/** prev_hash of the first row: there is nothing before it. */
export const GENESIS_HASH = '0'.repeat(64);

/** The fields a row's hash covers: everything but the chain columns and the database's seq. */
export interface AuditRowContent {
  id: string;
  /** ISO 8601 with milliseconds, exactly as `Date.prototype.toISOString` renders it. */
  timestamp: string;
  userId: string | null;
  action: string;
  resource: string | null;
  details: Record<string, unknown>;
  result: AuditResult;
  ipAddress: string | null;
  userAgent: string | null;
  severity: AuditSeverity;
  metadata: Record<string, unknown>;
}

/**
 * Deterministic JSON: object keys sorted, no whitespace, `undefined` object members dropped.
 * The values given here are already JSON-safe (the sanitiser guarantees it), and jsonb gives
 * back the same values in another key order, so writer and verifier serialise identically.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'object':
      break;
    default:
      throw new TypeError(`Cannot canonicalise a ${typeof value}`);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const object = value as Record<string, unknown>;
  const members = Object.keys(object)
    .filter((key) => object[key] !== undefined)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonicalJson(object[key])}`);
  return `{${members.join(',')}}`;
}

/** The canonical serialisation of a row's content, with every field present (null when empty). */
export function canonicalAuditContent(content: AuditRowContent): string {
  return canonicalJson({
    id: content.id,
    timestamp: content.timestamp,
    userId: content.userId ?? null,
    action: content.action,
    resource: content.resource ?? null,
    details: content.details ?? {},
    result: content.result,
    ipAddress: content.ipAddress ?? null,
    userAgent: content.userAgent ?? null,
    severity: content.severity,
    metadata: content.metadata ?? {},
  });
}

/** SHA-256 (hex) over the previous row's hash and this row's canonical content. */
export function computeAuditHash(prevHash: string, content: AuditRowContent): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalAuditContent(content)).digest('hex');
}

/**
 * The keyed MAC of a row (the `mac` column): HMAC-SHA256 under a key the database never sees,
 * over the row's hash, which already covers its content and, through prev_hash, every row
 * before it. Whoever can rewrite the table but lacks the key can recompute the SHA-256 chain,
 * not the MACs. Rows written before the keyed chain existed have none.
 */
export function computeAuditMac(macKey: Buffer, hash: string): string {
  return createHmac('sha256', macKey).update('smcp-audit-mac/1\n').update(hash).digest('hex');
}

/** Advisory-lock key that serialises appends to the chain (held until the writer's transaction ends). */
export const AUDIT_CHAIN_LOCK_KEY = '4702893516120394117';

/** Column types of an audit row's insert parameters (auditInsertParams), in order. */
export const AUDIT_INSERT_MANY_TYPES = [
  'text', 'timestamptz', 'text', 'text', 'text', 'jsonb', 'text', 'text', 'text', 'text', 'jsonb', 'text', 'text', 'text',
] as const;

/**
 * The one INSERT of audit rows: many at once, linked after an expected chain head: one array per
 * column (auditInsertParams, column by column), then the expected head ($15) and GENESIS_HASH ($16).
 * Inserts nothing (returns no row) unless the table's head is still the expected one; rows go in
 * array order, so `seq` follows the chain. Only correct under the chain lock, taken in an earlier
 * statement of the transaction (READ COMMITTED: this statement's snapshot then sees every
 * committed row).
 */
export const AUDIT_INSERT_LINKED_SQL = `INSERT INTO audit_logs
   (id, timestamp, user_id, action, resource, details, result, ip_address, user_agent, severity, metadata, prev_hash, hash, mac)
 SELECT id, timestamp, user_id, action, resource, details, result, ip_address, user_agent, severity, metadata, prev_hash, hash, mac
   FROM unnest(${AUDIT_INSERT_MANY_TYPES.map((type, i) => `$${i + 1}::${type}[]`).join(', ')}) WITH ORDINALITY
     AS r(id, timestamp, user_id, action, resource, details, result, ip_address, user_agent, severity, metadata, prev_hash, hash, mac, ord)
  WHERE COALESCE((SELECT h.hash FROM audit_logs h ORDER BY h.seq DESC LIMIT 1), $16) = $15
  ORDER BY ord
 RETURNING seq`;

/**
 * Parameters of AUDIT_INSERT_LINKED_SQL: rows from auditInsertParams (already linked one after
 * another) turned into one array per column, then the head they were linked after.
 */
export function auditLinkedInsertParams(rows: unknown[][], expectedHead: string): unknown[] {
  return [...AUDIT_INSERT_MANY_TYPES.map((_, column) => rows.map((row) => row[column])), expectedHead, GENESIS_HASH];
}

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

/** Insert parameters of a row linked to prevHash (its hash and keyed MAC computed here). */
export function auditInsertParams(content: AuditRowContent, prevHash: string, macKey: Buffer): unknown[] {
  const hash = computeAuditHash(prevHash, content);
  return [
    content.id,
    content.timestamp,
    content.userId,
    content.action,
    content.resource,
    JSON.stringify(content.details),
    content.result,
    content.ipAddress,
    content.userAgent,
    content.severity,
    JSON.stringify(content.metadata),
    prevHash,
    hash,
    computeAuditMac(macKey, hash),
  ];
}
