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

/** Insert parameters of a row linked to prevHash (its hash and keyed MAC computed here), in AuditLogRepository's insert order. */
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
