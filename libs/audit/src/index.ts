export { checkCheckpoint, parseCheckpoint } from './audit-checkpoint';
export type { AuditCheckpoint } from './audit-checkpoint';
export type { AuditEntry, AuditResult, AuditSeverity } from './audit-entry';
export {
  AUDIT_CHAIN_LOCK_KEY,
  AUDIT_CHAIN_LOCK_SQL,
  AUDIT_INSERT_LINKED_SQL,
  GENESIS_HASH,
  auditInsertParams,
  auditLinkedInsertParams,
  canonicalJson,
  computeAuditHash,
} from './audit-hash';
export type { AuditRowContent } from './audit-hash';
export { AuditKeyring } from './audit-keyring';
export { AUDIT_LOG_COLUMNS, auditRowContent } from './audit-log.row';
export type { AuditLogRow } from './audit-log.row';
export { REDACTED, sanitizeAuditData } from './audit-sanitizer';
export { AuditService } from './audit.service';
export { AuditModule } from './audit.module';
