export { checkCheckpoint, checkpointSignatureValid, parseCheckpoint } from './audit-checkpoint';
export type { AuditCheckpoint } from './audit-checkpoint';
export type { AuditEntry, AuditResult, AuditSeverity } from './audit-entry';
export { GENESIS_HASH, auditInsertRow, canonicalJson, computeAuditHash } from './audit-hash';
export type { AuditRowContent } from './audit-hash';
export { AuditKeyring } from './audit-keyring';
export {
  AUDIT_CHAIN_ISOLATION_SQL,
  AUDIT_CHAIN_LOCK_KEY,
  AUDIT_CHAIN_LOCK_SQL,
  AUDIT_INSERT_LINKED_SQL,
  AUDIT_LOGS_COLUMNS,
  assertChainLockIsolation,
  auditLinkedInsertParams,
  auditRowContent,
  auditRowsAfter,
} from './audit-log.repository';
export type { AuditLogRow } from './audit-log.repository';
export { REDACTED, sanitizeAuditData } from './audit-sanitizer';
export { AuditService } from './audit.service';
export { AuditModule } from './audit.module';
export { AuditAction, SYSTEM_ACTOR, auditEvent } from './audit-event';
export { AUDIT_EXPORT_CURSORS_TABLE_COLUMNS } from './export/audit-export-cursor.repository';
export { AuditExporter } from './export/audit-exporter.service';
export { AUDIT_EXPORT_SIGNATURE_HEADER } from './export/audit-export.sinks';
export type { ExportedRecord } from './export/audit-export.record';
