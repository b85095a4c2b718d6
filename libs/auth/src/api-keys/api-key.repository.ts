import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { returnedRows, Transaction } from '@app/database';

/** An agent API key as stored (the hash never leaves ApiKeyService). */
export interface ApiKey {
  id: string;
  userId: string;
  name: string;
  keyHash: string;
  keyPrefix: string;
  /** Null: every permission the owner holds at the time of use. */
  permissions: string[] | null;
  contextId: string | null;
  expiresAt: Date | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  /** The session the key's requests count in while it is active. */
  currentSessionId: string | null;
}

/** An `api_keys` row as the driver returns it (migration 1764600000000). */
interface ApiKeyRow {
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
  revoked_by: string | null;
  current_session_id: string | null;
}

/** Every column of `api_keys`, in table order. */
export const API_KEY_TABLE_COLUMNS: ReadonlyArray<keyof ApiKeyRow> = [
  'id',
  'user_id',
  'name',
  'key_hash',
  'key_prefix',
  'permissions',
  'context_id',
  'expires_at',
  'created_at',
  'last_used_at',
  'revoked_at',
  'revoked_by',
  'current_session_id',
];

/** What an `ApiKey` is read from (who revoked it is kept for the record only). */
const API_KEY_COLUMNS = API_KEY_TABLE_COLUMNS.filter((column) => column !== 'revoked_by').join(', ');

export interface NewApiKeyRow {
  id: string;
  userId: string;
  name: string;
  keyHash: string;
  keyPrefix: string;
  permissions: string[] | null;
  contextId: string | null;
  expiresAt: Date | null;
  createdAt: Date;
}

const dateOrNull = (value: Date | string | null): Date | null => (value === null ? null : new Date(value));

function apiKeyOf(row: Omit<ApiKeyRow, 'revoked_by'>): ApiKey {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    keyHash: row.key_hash,
    keyPrefix: row.key_prefix,
    permissions: row.permissions ? [...row.permissions] : null,
    contextId: row.context_id,
    expiresAt: dateOrNull(row.expires_at),
    createdAt: new Date(row.created_at),
    lastUsedAt: dateOrNull(row.last_used_at),
    revokedAt: dateOrNull(row.revoked_at),
    currentSessionId: row.current_session_id,
  };
}

/** SQL of `api_keys`. */
@Injectable()
export class ApiKeyRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async findByHash(keyHash: string): Promise<ApiKey | null> {
    const [row]: ApiKeyRow[] = await this.dataSource.query(`SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1`, [keyHash]);
    return row ? apiKeyOf(row) : null;
  }

  /** A user's keys, newest first. */
  async listByUser(userId: string): Promise<ApiKey[]> {
    const rows: ApiKeyRow[] = await this.dataSource.query(
      `SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id`,
      [userId],
    );
    return rows.map(apiKeyOf);
  }

  async countUnrevoked(tx: Transaction, userId: string): Promise<number> {
    const [{ count }]: Array<{ count: number }> = await tx.query(
      `SELECT count(*)::int AS count FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL`,
      [userId],
    );
    return Number(count);
  }

  async insert(tx: Transaction, key: NewApiKeyRow): Promise<ApiKey> {
    const [row] = returnedRows<ApiKeyRow>(
      await tx.query(
        `INSERT INTO api_keys (id, user_id, name, key_hash, key_prefix, permissions, context_id, expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${API_KEY_COLUMNS}`,
        [key.id, key.userId, key.name, key.keyHash, key.keyPrefix, key.permissions, key.contextId, key.expiresAt, key.createdAt],
      ),
    );
    return apiKeyOf(row);
  }

  /** Locks the row for the rest of the transaction and returns it. */
  async lockById(tx: Transaction, id: string): Promise<ApiKey | null> {
    const [row]: ApiKeyRow[] = await tx.query(`SELECT ${API_KEY_COLUMNS} FROM api_keys WHERE id = $1 FOR UPDATE`, [id]);
    return row ? apiKeyOf(row) : null;
  }

  /** Revokes the key and detaches its session; returns it as it is now. */
  async revoke(tx: Transaction, id: string, now: Date, revokedBy: string): Promise<ApiKey> {
    const [row] = returnedRows<ApiKeyRow>(
      await tx.query(
        `UPDATE api_keys SET revoked_at = $2, revoked_by = $3, current_session_id = NULL WHERE id = $1 RETURNING ${API_KEY_COLUMNS}`,
        [id, now, revokedBy],
      ),
    );
    return apiKeyOf(row);
  }

  async attachSession(tx: Transaction, id: string, sessionId: string, now: Date): Promise<void> {
    await tx.query(`UPDATE api_keys SET current_session_id = $2, last_used_at = $3 WHERE id = $1`, [id, sessionId, now]);
  }

  /**
   * Who owns a context (null when there is none). Read here, not through the contexts lib, which
   * sits above auth in the layering; only a key's binding needs it.
   */
  async contextOwner(contextId: string): Promise<string | null> {
    const [row]: Array<{ user_id: string }> = await this.dataSource.query(`SELECT user_id FROM contexts WHERE id = $1`, [contextId]);
    return row?.user_id ?? null;
  }
}
