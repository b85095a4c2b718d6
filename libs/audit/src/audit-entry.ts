export type AuditResult = 'success' | 'failure';
export type AuditSeverity = 'info' | 'warning' | 'error' | 'critical';

export const AUDIT_RESULTS: readonly AuditResult[] = ['success', 'failure'];
export const AUDIT_SEVERITIES: readonly AuditSeverity[] = ['info', 'warning', 'error', 'critical'];

/** What a caller hands to the audit writer; id, timestamp and the chain fields are added by it. */
export interface AuditEntry {
  action: string;
  resource?: string | null;
  userId?: string | null;
  details?: Record<string, unknown>;
  result: AuditResult;
  severity: AuditSeverity;
  ipAddress?: string | null;
  userAgent?: string | null;
  metadata?: Record<string, unknown>;
}

/** Outcome of walking the hash chain. */
export interface AuditChainVerification {
  valid: boolean;
  checked: number;
  firstInvalid: { id: string; seq: number; reason: string } | null;
  /** Rows before the keyed chain began (no MAC): only the SHA-256 chain and checkpoints vouch for them. */
  unkeyedRecords: number;
  /** The last row that verified. */
  head: { seq: number; id: string; hash: string } | null;
}
