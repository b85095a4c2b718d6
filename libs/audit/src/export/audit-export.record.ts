import type { AuditCheckpoint } from '../audit-checkpoint';
import { AuditAction } from '../audit-event';
import type { AuditLogRow } from '../audit-log.repository';

/**
 * The exported form of audit records: OCSF 1.3 events (https://schema.ocsf.io) with the record's
 * own fields kept in `unmapped` and the chain fields in `smcp`. Documented by
 * audit-export.schema.json; receivers deduplicate on `metadata.uid`.
 */
export const OCSF_VERSION = '1.3.0';
export const AUDIT_EXPORT_PRODUCT = { name: 'Secure MCP Server', vendor_name: 'secure-mcp-server' } as const;

interface OcsfClass {
  class_uid: number;
  class_name: string;
  category_uid: number;
  category_name: string;
}

const AUTHENTICATION: OcsfClass = {
  class_uid: 3002,
  class_name: 'Authentication',
  category_uid: 3,
  category_name: 'Identity & Access Management',
};
const ACCOUNT_CHANGE: OcsfClass = {
  class_uid: 3001,
  class_name: 'Account Change',
  category_uid: 3,
  category_name: 'Identity & Access Management',
};
const API_ACTIVITY: OcsfClass = { class_uid: 6003, class_name: 'API Activity', category_uid: 6, category_name: 'Application Activity' };
const BASE_EVENT: OcsfClass = { class_uid: 0, class_name: 'Base Event', category_uid: 0, category_name: 'Uncategorized' };

/** OCSF activity ids and names of the classes used (per class; 99 is Other everywhere). */
const ACTIVITY_NAMES: Record<number, Record<number, string>> = {
  3002: { 1: 'Logon', 2: 'Logoff', 99: 'Other' },
  3001: {
    1: 'Create',
    2: 'Enable',
    3: 'Password Change',
    5: 'Disable',
    9: 'Lock',
    10: 'MFA Factor Enable',
    11: 'MFA Factor Disable',
    99: 'Other',
  },
  6003: { 1: 'Create', 2: 'Read', 3: 'Update', 4: 'Delete', 99: 'Other' },
  0: { 99: 'Other' },
};

/** Each catalogued action's OCSF class and activity; actions not listed are API Activity / Other. */
const MAPPING: Record<string, [OcsfClass, number]> = {
  [AuditAction.AUTH_LOGIN]: [AUTHENTICATION, 1],
  [AuditAction.AUTH_LOGIN_FAILED]: [AUTHENTICATION, 1],
  [AuditAction.AUTH_MFA_VERIFY]: [AUTHENTICATION, 1],
  [AuditAction.AUTH_MFA_BACKUP_CODE_USED]: [AUTHENTICATION, 1],
  [AuditAction.AUTH_APIKEY_SESSION_OPENED]: [AUTHENTICATION, 1],
  [AuditAction.AUTH_LOGOUT]: [AUTHENTICATION, 2],
  [AuditAction.AUTH_REFRESH]: [AUTHENTICATION, 99],
  [AuditAction.AUTH_REFRESH_REUSE]: [AUTHENTICATION, 99],
  [AuditAction.AUTH_REGISTER]: [ACCOUNT_CHANGE, 1],
  [AuditAction.ADMIN_USER_CREATED]: [ACCOUNT_CHANGE, 1],
  [AuditAction.ADMIN_USER_REACTIVATED]: [ACCOUNT_CHANGE, 2],
  [AuditAction.AUTH_PASSWORD_CHANGED]: [ACCOUNT_CHANGE, 3],
  [AuditAction.AUTH_PASSWORD_CHANGE_FAILED]: [ACCOUNT_CHANGE, 3],
  [AuditAction.ADMIN_USER_SUSPENDED]: [ACCOUNT_CHANGE, 5],
  [AuditAction.AUTH_LOCKOUT]: [ACCOUNT_CHANGE, 9],
  [AuditAction.AUTH_MFA_ENABLE]: [ACCOUNT_CHANGE, 10],
  [AuditAction.ADMIN_USER_MFA_RESET]: [ACCOUNT_CHANGE, 11],
  [AuditAction.ADMIN_USER_ROLES_CHANGED]: [ACCOUNT_CHANGE, 99],
  [AuditAction.AUTH_APIKEY_CREATED]: [ACCOUNT_CHANGE, 99],
  [AuditAction.AUTH_APIKEY_REVOKED]: [ACCOUNT_CHANGE, 99],
  [AuditAction.CONTEXT_CREATE]: [API_ACTIVITY, 1],
  [AuditAction.UPSTREAM_CREDENTIAL_STORED]: [API_ACTIVITY, 1],
  [AuditAction.MCP_SESSION_OPENED]: [API_ACTIVITY, 1],
  [AuditAction.TOOL_DEFINITION_PINNED]: [API_ACTIVITY, 1],
  [AuditAction.CONTEXT_UPDATE]: [API_ACTIVITY, 3],
  [AuditAction.CONTEXT_ARCHIVE]: [API_ACTIVITY, 3],
  [AuditAction.ADMIN_TOOL_UPDATED]: [API_ACTIVITY, 3],
  [AuditAction.TOOL_CATALOG_RECONCILED]: [API_ACTIVITY, 3],
  [AuditAction.TOOL_DEFINITION_CHANGED]: [API_ACTIVITY, 3],
  [AuditAction.TOOL_DEFINITION_FLAGGED]: [API_ACTIVITY, 3],
  [AuditAction.TOOL_DEFINITION_APPROVED]: [API_ACTIVITY, 3],
  [AuditAction.TOOL_DEFINITION_RESTORED]: [API_ACTIVITY, 3],
  [AuditAction.CONTEXT_DELETE]: [API_ACTIVITY, 4],
  [AuditAction.UPSTREAM_CREDENTIAL_DELETED]: [API_ACTIVITY, 4],
  [AuditAction.UPSTREAM_CREDENTIAL_REVOKED]: [API_ACTIVITY, 4],
  [AuditAction.SESSION_TERMINATE]: [API_ACTIVITY, 4],
  [AuditAction.MCP_SESSION_CLOSED]: [API_ACTIVITY, 4],
  [AuditAction.TOOL_EXECUTE]: [API_ACTIVITY, 99],
};

/** OCSF severity_id: 1 Informational, 3 Medium, 4 High, 5 Critical. */
const SEVERITY_IDS: Record<string, [number, string]> = {
  info: [1, 'Informational'],
  warning: [3, 'Medium'],
  error: [4, 'High'],
  critical: [5, 'Critical'],
};

/** What every exported record has; the class-specific objects are optional in this type. */
export interface ExportedRecord {
  class_uid: number;
  class_name: string;
  category_uid: number;
  category_name: string;
  activity_id: number;
  activity_name: string;
  type_uid: number;
  type_name: string;
  time: number;
  severity_id: number;
  severity: string;
  status_id?: number;
  status?: string;
  message: string;
  metadata: {
    version: string;
    product: { name: string; vendor_name: string; version: string };
    uid: string;
    sequence: number;
    log_name: string;
  };
  actor?: { user: { uid: string } };
  src_endpoint?: { ip: string };
  http_request?: { user_agent: string };
  api?: { operation: string };
  user?: { uid: string };
  unmapped?: Record<string, unknown>;
  smcp: AuditRecordChain | CheckpointChain;
}

export interface AuditRecordChain {
  record_type: 'audit_record';
  seq: number;
  hash: string;
  prev_hash: string;
  mac: string | null;
}

export interface CheckpointChain {
  record_type: 'chain_checkpoint';
  seq: number;
  hash: string;
  checkpoint: AuditCheckpoint;
}

function classFields(ocsf: OcsfClass, activityId: number) {
  const activityName = ACTIVITY_NAMES[ocsf.class_uid][activityId];
  return {
    ...ocsf,
    activity_id: activityId,
    activity_name: activityName,
    type_uid: ocsf.class_uid * 100 + activityId,
    type_name: `${ocsf.class_name}: ${activityName}`,
  };
}

/** One audit row as an OCSF event; deterministic (a redelivery carries the same bytes). */
export function auditRecordToOcsf(row: AuditLogRow, productVersion: string): ExportedRecord {
  const [ocsf, activityId] = MAPPING[row.action] ?? [API_ACTIVITY, 99];
  const [severityId, severity] = SEVERITY_IDS[row.severity] ?? [0, 'Unknown'];
  const success = row.result === 'success';
  const record: ExportedRecord = {
    ...classFields(ocsf, activityId),
    time: new Date(row.timestamp).getTime(),
    severity_id: severityId,
    severity,
    status_id: success ? 1 : 2,
    status: success ? 'Success' : 'Failure',
    message: row.action,
    metadata: {
      version: OCSF_VERSION,
      product: { ...AUDIT_EXPORT_PRODUCT, version: productVersion },
      uid: row.id,
      sequence: Number(row.seq),
      log_name: 'audit_logs',
    },
    smcp: { record_type: 'audit_record', seq: Number(row.seq), hash: row.hash, prev_hash: row.prev_hash, mac: row.mac },
  };
  if (row.user_id !== null) {
    record.actor = { user: { uid: row.user_id } };
    // Authentication and Account Change name the account the event is about in `user`.
    if (ocsf !== API_ACTIVITY) record.user = { uid: row.user_id };
  }
  if (row.ip_address !== null) record.src_endpoint = { ip: row.ip_address };
  if (row.user_agent !== null) record.http_request = { user_agent: row.user_agent };
  if (ocsf === API_ACTIVITY) record.api = { operation: row.action };
  record.unmapped = {
    action: row.action,
    resource: row.resource,
    result: row.result,
    severity: row.severity,
    details: row.details,
    metadata: row.metadata,
    timestamp: new Date(row.timestamp).toISOString(),
  };
  return record;
}

/**
 * A signed chain checkpoint as its own record: OCSF Base Event / Other, the checkpoint whole in
 * `smcp.checkpoint` (checkable offline with the public key of GET /admin/audit-logs/checkpoint-key
 * and `cli audit:verify-checkpoint`). Its uid names the row it vouches for, so a re-signed one after a
 * redelivery is deduplicated like any record.
 */
export function checkpointToOcsf(checkpoint: AuditCheckpoint, productVersion: string): ExportedRecord {
  return {
    ...classFields(BASE_EVENT, 99),
    time: new Date(checkpoint.createdAt).getTime(),
    severity_id: 1,
    severity: 'Informational',
    message: 'audit.chain.checkpoint',
    metadata: {
      version: OCSF_VERSION,
      product: { ...AUDIT_EXPORT_PRODUCT, version: productVersion },
      uid: `checkpoint:${checkpoint.seq}:${checkpoint.keyId}`,
      sequence: checkpoint.seq,
      log_name: 'audit_checkpoints',
    },
    smcp: { record_type: 'chain_checkpoint', seq: checkpoint.seq, hash: checkpoint.hash, checkpoint },
  };
}
