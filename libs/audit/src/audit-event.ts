import type { Actor } from '@app/core';
import type { AuditEntry, AuditResult, AuditSeverity } from './audit-entry';

/**
 * Every action the server writes to the audit log, in one place: readers of the log (and of
 * GET /admin/audit-logs?action=) can rely on this list, and a new action is added here first.
 */
export const AuditAction = {
  AUTH_REGISTER: 'auth.register',
  AUTH_LOGIN: 'auth.login',
  AUTH_LOGIN_FAILED: 'auth.login_failed',
  AUTH_LOCKOUT: 'auth.lockout',
  AUTH_REFRESH: 'auth.refresh',
  AUTH_REFRESH_REUSE: 'auth.refresh_reuse',
  AUTH_LOGOUT: 'auth.logout',
  AUTH_PASSWORD_CHANGED: 'auth.password_changed',
  AUTH_PASSWORD_CHANGE_FAILED: 'auth.password_change_failed',
  AUTH_MFA_ENABLE: 'auth.mfa.enable',
  AUTH_MFA_VERIFY: 'auth.mfa.verify',
  AUTH_MFA_BACKUP_CODE_USED: 'auth.mfa.backup_code_used',
  AUTH_APIKEY_CREATED: 'auth.apikey.created',
  AUTH_APIKEY_REVOKED: 'auth.apikey.revoked',
  AUTH_APIKEY_SESSION_OPENED: 'auth.apikey.session_opened',
  /** An account created just in time by a sign-in (or token) of an enterprise identity provider. */
  AUTH_IDP_ACCOUNT_CREATED: 'auth.idp.account_created',
  /** An IdP identity (issuer + subject) linked to an existing account by its verified email. */
  AUTH_IDP_LINKED: 'auth.idp.linked',
  /** An IdP identity refused: unverified email, untrusted domain, domain not allowed, account inactive. */
  AUTH_IDP_REFUSED: 'auth.idp.refused',
  /** Roles or permissions re-evaluated from the IdP's claims changed the account's. */
  AUTH_IDP_ROLES_CHANGED: 'auth.idp.roles_changed',
  ADMIN_USER_CREATED: 'admin.user.created',
  ADMIN_USER_ROLES_CHANGED: 'admin.user.roles_changed',
  ADMIN_USER_SUSPENDED: 'admin.user.suspended',
  ADMIN_USER_REACTIVATED: 'admin.user.reactivated',
  ADMIN_USER_MFA_RESET: 'admin.user.mfa_reset',
  ADMIN_TOOL_UPDATED: 'admin.tool.updated',
  SESSION_TERMINATE: 'session.terminate',
  CONTEXT_CREATE: 'context.create',
  CONTEXT_UPDATE: 'context.update',
  CONTEXT_ARCHIVE: 'context.archive',
  CONTEXT_DELETE: 'context.delete',
  MCP_SESSION_OPENED: 'mcp.session.opened',
  MCP_SESSION_CLOSED: 'mcp.session.closed',
  /** An upstream's sampling, elicitation or roots request, relayed to (or refused for) the agent whose call it serves. */
  MCP_CLIENT_REQUEST_RELAYED: 'mcp.client_request.relayed',
  TOOL_EXECUTE: 'tool.execute',
  TOOL_CATALOG_RECONCILED: 'tool.catalog.reconciled',
  TOOL_DEFINITION_PINNED: 'tool.definition_pinned',
  TOOL_DEFINITION_CHANGED: 'tool.definition_changed',
  TOOL_DEFINITION_FLAGGED: 'tool.definition_flagged',
  TOOL_DEFINITION_APPROVED: 'tool.definition_approved',
  TOOL_DEFINITION_RESTORED: 'tool.definition_restored',
  /** A user stored (or replaced) their own credential for an upstream (`auth: user-secret`); never the secret. */
  UPSTREAM_CREDENTIAL_STORED: 'upstream.credential.stored',
  /** A user's own upstream credential was deleted (they disconnected). */
  UPSTREAM_CREDENTIAL_DELETED: 'upstream.credential.deleted',
  /**
   * After a disconnect, the gateway asked the upstream's authorization server to revoke the user's
   * tokens (RFC 7009): `success`, or `failure` with the reason; never a token.
   */
  UPSTREAM_CREDENTIAL_REVOKED: 'upstream.credential.revoked',
  /** A tool call went to an upstream with the calling user's own credential. */
  UPSTREAM_CREDENTIAL_USED: 'upstream.credential.used',
  /** The upstream refused a user's own credential (HTTP 401/403): the user must set a new one. */
  UPSTREAM_CREDENTIAL_REJECTED: 'upstream.credential.rejected',
  /** A user connected their own account at an upstream's authorization server (`auth: user-oauth`); never a token. */
  UPSTREAM_CREDENTIAL_CONNECTED: 'upstream.credential.connected',
  /** The gateway refreshed a user's upstream access token (`auth: user-oauth`). */
  UPSTREAM_CREDENTIAL_REFRESHED: 'upstream.credential.refreshed',
  /** Refreshing a user's upstream token failed (revoked upstream): the connection is broken until they connect again. */
  UPSTREAM_CREDENTIAL_REFRESH_FAILED: 'upstream.credential.refresh_failed',
  /** An agent got a federated upstream's prompt (prompts/get). */
  PROMPT_GET: 'prompt.get',
  /** An agent read a federated upstream's resource (resources/read). */
  RESOURCE_READ: 'resource.read',
  /** A user consented on the OAuth consent page: a grant (and its gateway session) for a client, scopes and resource. */
  OAUTH_GRANT: 'oauth.grant',
  /** A user refused a client on the consent page. */
  OAUTH_CONSENT_DENIED: 'oauth.consent_denied',
  /** The OAuth token endpoint issued tokens for an authorization code. */
  OAUTH_TOKEN_ISSUED: 'oauth.token_issued',
  /** The OAuth token endpoint rotated a refresh token. */
  OAUTH_REFRESH: 'oauth.refresh',
  /** An OAuth refresh token presented a second time: its grant and gateway session are revoked. */
  OAUTH_REFRESH_REUSE: 'oauth.refresh_reuse',
  /** A grant was revoked (by its user, an admin, reuse detection, or token revocation). */
  OAUTH_GRANT_REVOKED: 'oauth.grant_revoked',
  /** An admin registered an OAuth client (or a client registered itself dynamically). */
  OAUTH_CLIENT_CREATED: 'oauth.client.created',
  /** An admin deleted an OAuth client. */
  OAUTH_CLIENT_DELETED: 'oauth.client.deleted',
} as const;

export type AuditAction = (typeof AuditAction)[keyof typeof AuditAction];

/** Every catalogued action (for filters and tests). */
export const AUDIT_ACTIONS: readonly AuditAction[] = Object.values(AuditAction);

/** Who did it and from where, as far as an audit record needs it (an Actor, or the system: all null). */
export type AuditActor = Pick<Actor, 'ipAddress' | 'userAgent'> & Partial<Pick<Actor, 'principal'>>;

/** The actor of work nobody requested (reconciliation, background jobs). */
export const SYSTEM_ACTOR: AuditActor = { ipAddress: null, userAgent: null };

export interface AuditEventFields {
  /** Whose account the record is about; defaults to the actor's user (null for the system). */
  userId?: string | null;
  resource?: string | null;
  /** Default 'success'. */
  result?: AuditResult;
  /** Default 'info' for a success, 'warning' for a failure. */
  severity?: AuditSeverity;
  details?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}

/**
 * The one way services build an audit record: a catalogued action, the actor (user, address,
 * agent) and what is specific to the event. Fields not given are left out, which the writer
 * stores exactly as before (empty details and metadata, null resource).
 */
export function auditEvent(action: AuditAction, actor: AuditActor, fields: AuditEventFields = {}): AuditEntry {
  const result = fields.result ?? 'success';
  const entry: AuditEntry = {
    action,
    userId: fields.userId !== undefined ? fields.userId : (actor.principal?.userId ?? null),
    result,
    severity: fields.severity ?? (result === 'failure' ? 'warning' : 'info'),
    ipAddress: actor.ipAddress,
    userAgent: actor.userAgent,
  };
  if (fields.resource !== undefined) entry.resource = fields.resource;
  if (fields.details !== undefined) entry.details = fields.details;
  if (fields.metadata !== undefined) entry.metadata = fields.metadata;
  return entry;
}
