import type { ApiKey } from './api-key.repository';

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

export function apiKeyViewOf(key: ApiKey, nowMs: number): ApiKeyView {
  const status: ApiKeyStatus = key.revokedAt ? 'revoked' : key.expiresAt && key.expiresAt.getTime() <= nowMs ? 'expired' : 'active';
  return {
    id: key.id,
    name: key.name,
    prefix: key.keyPrefix,
    permissions: key.permissions ? [...key.permissions] : null,
    contextId: key.contextId,
    status,
    expiresAt: key.expiresAt,
    createdAt: key.createdAt,
    lastUsedAt: key.lastUsedAt,
    revokedAt: key.revokedAt,
  };
}
