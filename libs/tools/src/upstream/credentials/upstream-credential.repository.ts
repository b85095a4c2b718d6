import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { returnedRows } from '@app/database';

export type CredentialMode = 'user-secret' | 'user-oauth';
/** `broken`: the upstream's authorization server refused the refresh token; the user must connect again. */
export type CredentialStatus = 'active' | 'broken';

/** A user's connection to an upstream, as users and admins see it: never the secret. */
export interface UpstreamConnection {
  id: string;
  userId: string;
  upstream: string;
  mode: CredentialMode;
  version: number;
  createdAt: Date;
  updatedAt: Date;
  lastUsedAt: Date | null;
  /** When the stored access token expires (user-oauth), if the authorization server said. */
  expiresAt: Date | null;
  status: CredentialStatus;
}

/** A connection with its sealed secret: only the credential store reads these. */
export interface SealedCredential extends UpstreamConnection {
  secretCiphertext: string;
}

interface CredentialRow {
  id: string;
  user_id: string;
  upstream: string;
  mode: CredentialMode;
  secret_ciphertext: string;
  version: number;
  created_at: Date;
  updated_at: Date;
  last_used_at: Date | null;
  expires_at: Date | null;
  status: CredentialStatus;
}

/** Every column of `upstream_credentials`, in table order (migrations 1764975000000, 1764985000000). */
export const UPSTREAM_CREDENTIALS_TABLE_COLUMNS: ReadonlyArray<keyof CredentialRow> = [
  'id',
  'user_id',
  'upstream',
  'mode',
  'secret_ciphertext',
  'version',
  'created_at',
  'updated_at',
  'last_used_at',
  'expires_at',
  'status',
];

const VIEW_COLUMNS = 'c.id, c.user_id, c.upstream, c.mode, c.version, c.created_at, c.updated_at, c.last_used_at, c.expires_at, c.status';
const SEALED_COLUMNS = `${VIEW_COLUMNS}, c.secret_ciphertext`;

function connectionOf(row: Omit<CredentialRow, 'secret_ciphertext'>): UpstreamConnection {
  return {
    id: row.id,
    userId: row.user_id,
    upstream: row.upstream,
    mode: row.mode,
    version: Number(row.version),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    lastUsedAt: row.last_used_at === null ? null : new Date(row.last_used_at),
    expiresAt: row.expires_at === null || row.expires_at === undefined ? null : new Date(row.expires_at),
    status: row.status ?? 'active',
  };
}

function sealedOf(row: CredentialRow): SealedCredential {
  return { ...connectionOf(row), secretCiphertext: row.secret_ciphertext };
}

/** The one home of `upstream_credentials` SQL. Writes run in the caller's transaction. */
@Injectable()
export class UpstreamCredentialRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Stores (or replaces, bumping `version`) the user's secret for the upstream. */
  async upsert(
    tx: EntityManager,
    input: {
      id: string;
      userId: string;
      upstream: string;
      mode: CredentialMode;
      secretCiphertext: string;
      now: Date;
      expiresAt?: Date | null;
    },
  ): Promise<{ connection: UpstreamConnection; replaced: boolean }> {
    const [row]: Array<CredentialRow & { replaced: boolean }> = await tx.query(
      `INSERT INTO upstream_credentials AS c (id, user_id, upstream, mode, secret_ciphertext, version, created_at, updated_at, expires_at, status)
       VALUES ($1, $2, $3, $4, $5, 1, $6, $6, $7, 'active')
       ON CONFLICT (user_id, upstream) DO UPDATE
         SET mode = EXCLUDED.mode, secret_ciphertext = EXCLUDED.secret_ciphertext, version = c.version + 1, updated_at = EXCLUDED.updated_at,
             expires_at = EXCLUDED.expires_at, status = 'active'
       RETURNING ${VIEW_COLUMNS}, (c.version > 1) AS replaced`,
      [input.id, input.userId, input.upstream, input.mode, input.secretCiphertext, input.now, input.expiresAt ?? null],
    );
    return { connection: connectionOf(row), replaced: row.replaced };
  }

  /**
   * Deletes the user's credential for the upstream; the deleted connection with what it held
   * sealed (a user-oauth connection's tokens are revoked upstream once this commits), or undefined.
   */
  async delete(tx: EntityManager, userId: string, upstream: string): Promise<SealedCredential | undefined> {
    const rows = returnedRows<CredentialRow>(
      await tx.query(`DELETE FROM upstream_credentials c WHERE c.user_id = $1 AND c.upstream = $2 RETURNING ${SEALED_COLUMNS}`, [
        userId,
        upstream,
      ]),
    );
    return rows[0] ? sealedOf(rows[0]) : undefined;
  }

  async listByUser(userId: string): Promise<UpstreamConnection[]> {
    const rows: CredentialRow[] = await this.dataSource.query(
      `SELECT ${VIEW_COLUMNS} FROM upstream_credentials c WHERE c.user_id = $1 ORDER BY c.upstream`,
      [userId],
    );
    return rows.map(connectionOf);
  }

  /** Every connection (admins), with the user's email, optionally of one upstream. */
  async listAll(upstream: string | undefined, limit: number): Promise<Array<UpstreamConnection & { email: string; userStatus: string }>> {
    const rows: Array<CredentialRow & { email: string; status: string }> = await this.dataSource.query(
      `SELECT ${VIEW_COLUMNS}, u.email, u.status FROM upstream_credentials c JOIN users u ON u.id = c.user_id
       WHERE ($1::text IS NULL OR c.upstream = $1) ORDER BY c.upstream, u.email LIMIT $2`,
      [upstream ?? null, limit],
    );
    return rows.map((row) => ({ ...connectionOf(row), email: row.email, userStatus: row.status }));
  }

  /**
   * The sealed credential a call of this user may use: none when the user is not active
   * (suspended or deleted: unusable at once, on every replica, since this is read per call).
   */
  async findUsable(userId: string, upstream: string): Promise<SealedCredential | undefined> {
    const [row]: CredentialRow[] = await this.dataSource.query(
      `SELECT ${SEALED_COLUMNS} FROM upstream_credentials c JOIN users u ON u.id = c.user_id
       WHERE c.user_id = $1 AND c.upstream = $2 AND u.status = 'active'`,
      [userId, upstream],
    );
    return row ? sealedOf(row) : undefined;
  }

  /** The user when their account is active (token exchange: who the subject is), else undefined. */
  async activeUser(userId: string): Promise<{ id: string; email: string } | undefined> {
    const [row]: Array<{ id: string; email: string }> = await this.dataSource.query(
      `SELECT id, email FROM users WHERE id = $1 AND status = 'active'`,
      [userId],
    );
    return row;
  }

  /** Marks a use (in the use's audit transaction). */
  async touch(tx: EntityManager, id: string, now: Date): Promise<void> {
    await tx.query(`UPDATE upstream_credentials SET last_used_at = $2 WHERE id = $1`, [id, now]);
  }

  /** Re-seals a secret under the current key (rotation); only when it has not been replaced meanwhile. */
  async reseal(tx: EntityManager, id: string, version: number, secretCiphertext: string): Promise<void> {
    await tx.query(`UPDATE upstream_credentials SET secret_ciphertext = $3 WHERE id = $1 AND version = $2`, [
      id,
      version,
      secretCiphertext,
    ]);
  }

  /**
   * Replaces the tokens after a refresh, only when the stored value is still the one refreshed
   * (`version`): the new connection, or undefined when it changed meanwhile (another refresh, a
   * new connect, a disconnect).
   */
  async refreshed(
    tx: EntityManager,
    input: { id: string; version: number; secretCiphertext: string; expiresAt: Date | null; now: Date },
  ): Promise<UpstreamConnection | undefined> {
    const rows = returnedRows<CredentialRow>(
      await tx.query(
        `UPDATE upstream_credentials c SET secret_ciphertext = $3, expires_at = $4, updated_at = $5, version = c.version + 1
         WHERE c.id = $1 AND c.version = $2 AND c.status = 'active' RETURNING ${VIEW_COLUMNS}`,
        [input.id, input.version, input.secretCiphertext, input.expiresAt, input.now],
      ),
    );
    return rows[0] ? connectionOf(rows[0]) : undefined;
  }

  /** The authorization server refused the refresh token: the connection stays listed, broken, until the user connects again. */
  async markBroken(tx: EntityManager, id: string, version: number, now: Date): Promise<boolean> {
    const rows = returnedRows<CredentialRow>(
      await tx.query(
        `UPDATE upstream_credentials c SET status = 'broken', version = c.version + 1, updated_at = $3
         WHERE c.id = $1 AND c.version = $2 RETURNING ${VIEW_COLUMNS}`,
        [id, version, now],
      ),
    );
    return rows.length > 0;
  }

  /** Forces the next use to refresh first (the upstream refused the access token before its stated expiry). */
  async expire(id: string, version: number, now: Date): Promise<void> {
    await this.dataSource.query(`UPDATE upstream_credentials SET expires_at = $3 WHERE id = $1 AND version = $2`, [id, version, now]);
  }
}
