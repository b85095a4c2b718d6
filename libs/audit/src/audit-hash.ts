import { createHmac, hash as digest } from 'node:crypto';
import type { AuditResult, AuditSeverity } from './audit-entry';
import type { AuditLogRow } from './audit-log.repository';

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
  // Loops rather than map/filter/join: every audit record is serialised this way (a hot path under load).
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const object = value as Record<string, unknown>;
  let out = '{';
  for (const key of Object.keys(object).sort()) {
    const member = object[key];
    if (member === undefined) continue;
    out += `${out.length === 1 ? '' : ','}${JSON.stringify(key)}:${canonicalJson(member)}`;
  }
  return `${out}}`;
}

/**
 * The canonical serialisation of a row's content, with every field present (null when empty): what
 * canonicalJson gives for the object of these eleven fields, written out in its sorted key order
 * (no object to build and sort per record). id, timestamp, action, result and severity are never
 * undefined (the type, and NOT NULL columns the verifier reads them from).
 */
export function canonicalAuditContent(content: AuditRowContent): string {
  return (
    `{"action":${canonicalJson(content.action)},"details":${canonicalJson(content.details ?? {})},"id":${canonicalJson(content.id)}` +
    `,"ipAddress":${canonicalJson(content.ipAddress ?? null)},"metadata":${canonicalJson(content.metadata ?? {})}` +
    `,"resource":${canonicalJson(content.resource ?? null)},"result":${canonicalJson(content.result)}` +
    `,"severity":${canonicalJson(content.severity)},"timestamp":${canonicalJson(content.timestamp)}` +
    `,"userAgent":${canonicalJson(content.userAgent ?? null)},"userId":${canonicalJson(content.userId ?? null)}}`
  );
}

/** SHA-256 (hex) over the previous row's hash and this row's canonical content. */
export function computeAuditHash(prevHash: string, content: AuditRowContent): string {
  // One-shot (no Hash object per record): the same bytes as hashing prevHash, '\n' and the content in turn.
  return digest('sha256', `${prevHash}\n${canonicalAuditContent(content)}`, 'hex');
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

/**
 * An audit row as the linked insert takes it (auditLinkedInsertParams): its columns by name, the
 * row linked to `prev_hash` (its hash and keyed MAC computed here). `details` and `metadata` stay
 * objects: they are serialised once, with the batch (jsonb stores them as JSON.stringify writes them).
 */
export type AuditInsertRow = Omit<AuditLogRow, 'seq' | 'timestamp' | 'mac'> & { timestamp: string; mac: string };

/** The insert row of a record linked to prevHash: see AuditInsertRow. */
export function auditInsertRow(content: AuditRowContent, prevHash: string, macKey: Buffer): AuditInsertRow {
  const hash = computeAuditHash(prevHash, content);
  return {
    id: content.id,
    timestamp: content.timestamp,
    user_id: content.userId,
    action: content.action,
    resource: content.resource,
    details: content.details,
    result: content.result,
    ip_address: content.ipAddress,
    user_agent: content.userAgent,
    severity: content.severity,
    metadata: content.metadata,
    prev_hash: prevHash,
    hash,
    mac: computeAuditMac(macKey, hash),
  };
}
