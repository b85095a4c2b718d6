import type { AuditResult, AuditSeverity } from './audit-entry';
import type { AuditRowContent } from './audit-hash';

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

export const AUDIT_LOG_COLUMNS =
  'seq, id, timestamp, user_id, action, resource, details, result, ip_address, user_agent, severity, metadata, prev_hash, hash, mac';

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
