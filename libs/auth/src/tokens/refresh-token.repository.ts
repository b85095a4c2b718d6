import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { returnedRows, Transaction } from '@app/database';

/** A `refresh_tokens` row as the driver returns it (migration 1764100000000). */
interface RefreshTokenRow {
  id: string;
  session_id: string;
  token_hash: string;
  expires_at: Date;
  used_at: Date | null;
  created_at: Date;
}

/** Every column of `refresh_tokens`, in table order. */
export const REFRESH_TOKEN_TABLE_COLUMNS: ReadonlyArray<keyof RefreshTokenRow> = [
  'id',
  'session_id',
  'token_hash',
  'expires_at',
  'used_at',
  'created_at',
];

/** What the table knows about a presented refresh token, with its session's user. */
export interface RefreshTokenRecord {
  id: string;
  sessionId: string;
  userId: string;
  usedAt: Date | null;
  expiresAt: Date;
}

export interface NewRefreshToken {
  id: string;
  sessionId: string;
  tokenHash: string;
  expiresAt: Date;
  createdAt: Date;
}

/** SQL of `refresh_tokens`. */
@Injectable()
export class RefreshTokenRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async insert(tx: Transaction, token: NewRefreshToken): Promise<void> {
    await tx.query(`INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)`, [
      token.id,
      token.sessionId,
      token.tokenHash,
      token.expiresAt,
      token.createdAt,
    ]);
  }

  /** The token with this hash and its session's user (pooled connection). */
  async findByHash(tokenHash: string): Promise<RefreshTokenRecord | null> {
    const [row]: Array<Pick<RefreshTokenRow, 'id' | 'session_id' | 'used_at' | 'expires_at'> & { user_id: string }> =
      await this.dataSource.query(
        `SELECT rt.id, rt.session_id, s.user_id, rt.used_at, rt.expires_at
         FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
        WHERE rt.token_hash = $1`,
        [tokenHash],
      );
    if (!row) return null;
    return {
      id: row.id,
      sessionId: row.session_id,
      userId: row.user_id,
      usedAt: row.used_at ? new Date(row.used_at) : null,
      expiresAt: new Date(row.expires_at),
    };
  }

  /** Marks the token used if it is unused and unexpired at `now`; one conditional UPDATE. True when this call did. */
  async markUsed(tx: Transaction, id: string, now: Date): Promise<boolean> {
    const rows = returnedRows(
      await tx.query(`UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND expires_at > $2 RETURNING id`, [
        id,
        now,
      ]),
    );
    return rows.length === 1;
  }
}
