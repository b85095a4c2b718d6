import { Inject, Injectable } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { InjectDataSource } from '@nestjs/typeorm';
import { APP_CONFIG, AppConfig, Clock, newId } from '@app/core';
import { returnedRows } from '@app/database';

/** Prefix of our refresh tokens, so a leaked one is recognisable (e.g. by secret scanners). */
const TOKEN_PREFIX = 'rt_';
const TOKEN_SHAPE = /^rt_[A-Za-z0-9_-]{43}$/;

/** What the table knows about a presented refresh token. */
export interface RefreshTokenRecord {
  id: string;
  sessionId: string;
  userId: string;
  usedAt: Date | null;
  expiresAt: Date;
}

/**
 * Opaque refresh tokens: 256 random bits, stored only as their SHA-256 (a fast hash is enough
 * for a random secret), single use, rotated on every refresh.
 */
@Injectable()
export class RefreshTokenService {
  private readonly ttlMs: number;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.ttlMs = config.auth.refreshTokenTtlSec * 1000;
  }

  static hash(token: string): string {
    return createHash('sha256').update(token, 'utf8').digest('hex');
  }

  /** A new token for the session, stored (hashed) inside the caller's transaction. Returns the token itself. */
  async issue(manager: EntityManager, sessionId: string): Promise<string> {
    const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const now = this.clock.nowMs();
    await manager.query(
      `INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)`,
      [newId('rft'), sessionId, RefreshTokenService.hash(token), new Date(now + this.ttlMs), new Date(now)],
    );
    return token;
  }

  /** Looks a presented token up (null when it is malformed or unknown). */
  async find(token: string): Promise<RefreshTokenRecord | null> {
    if (!TOKEN_SHAPE.test(token)) return null;
    const rows: Array<{ id: string; session_id: string; user_id: string; used_at: Date | null; expires_at: Date }> =
      await this.dataSource.query(
        `SELECT rt.id, rt.session_id, s.user_id, rt.used_at, rt.expires_at
         FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id
         WHERE rt.token_hash = $1`,
        [RefreshTokenService.hash(token)],
      );
    const row = rows[0];
    if (!row) return null;
    return {
      id: row.id,
      sessionId: row.session_id,
      userId: row.user_id,
      usedAt: row.used_at ? new Date(row.used_at) : null,
      expiresAt: new Date(row.expires_at),
    };
  }

  /**
   * Marks the token used if, and only if, nobody has yet: one conditional UPDATE, so of any
   * number of concurrent presentations exactly one wins (the others wait on the row lock and
   * then find `used_at` set).
   */
  async claim(manager: EntityManager, tokenId: string): Promise<boolean> {
    const now = this.clock.now();
    const rows = returnedRows(
      await manager.query(
        `UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND expires_at > $2 RETURNING id`,
        [tokenId, now],
      ),
    );
    return rows.length === 1;
  }
}
