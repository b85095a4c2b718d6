/** An `api_keys` row as the driver returns it (the hash never leaves the service). */
export interface ApiKeyRow {
  id: string;
  user_id: string;
  name: string;
  key_hash: string;
  key_prefix: string;
  permissions: string[] | null;
  context_id: string | null;
  expires_at: Date | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
  current_session_id: string | null;
}

export const API_KEY_COLUMNS =
  'id, user_id, name, key_hash, key_prefix, permissions, context_id, expires_at, created_at, last_used_at, revoked_at, current_session_id';

export type ApiKeyStatus = 'active' | 'expired' | 'revoked';

/** A key as its owner sees it. */
export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  /** Null: every permission the owner holds at the time of use. */
  permissions: string[] | null;
  contextId: string | null;
  status: ApiKeyStatus;
  expiresAt: Date | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export function apiKeyViewOf(row: ApiKeyRow, nowMs: number): ApiKeyView {
  const expiresAt = row.expires_at ? new Date(row.expires_at) : null;
  const status: ApiKeyStatus = row.revoked_at ? 'revoked' : expiresAt && expiresAt.getTime() <= nowMs ? 'expired' : 'active';
  return {
    id: row.id,
    name: row.name,
    prefix: row.key_prefix,
    permissions: row.permissions ? [...row.permissions] : null,
    contextId: row.context_id,
    status,
    expiresAt,
    createdAt: new Date(row.created_at),
    lastUsedAt: row.last_used_at ? new Date(row.last_used_at) : null,
    revokedAt: row.revoked_at ? new Date(row.revoked_at) : null,
  };
}
