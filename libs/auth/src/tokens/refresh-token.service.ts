import { Inject, Injectable } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { APP_CONFIG, AppConfig, Clock, newId } from '@app/core';
import type { Transaction } from '@app/database';
import { RefreshTokenRecord, RefreshTokenRepository } from './refresh-token.repository';

/** Prefix of our refresh tokens, so a leaked one is recognisable (e.g. by secret scanners). */
const TOKEN_PREFIX = 'rt_';
const TOKEN_SHAPE = /^rt_[A-Za-z0-9_-]{43}$/;

/**
 * Opaque refresh tokens: 256 random bits, stored only as their SHA-256 (a fast hash is enough
 * for a random secret), single use, rotated on every refresh.
 */
@Injectable()
export class RefreshTokenService {
  private readonly ttlMs: number;

  constructor(
    private readonly repository: RefreshTokenRepository,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.ttlMs = config.auth.refreshTokenTtlSec * 1000;
  }

  static hash(token: string): string {
    return createHash('sha256').update(token, 'utf8').digest('hex');
  }

  /** A new token for the session, stored (hashed) inside the caller's transaction. Returns the token itself. */
  async issue(tx: Transaction, sessionId: string): Promise<string> {
    const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    const now = this.clock.nowMs();
    await this.repository.insert(tx, {
      id: newId('rft'),
      sessionId,
      tokenHash: RefreshTokenService.hash(token),
      expiresAt: new Date(now + this.ttlMs),
      createdAt: new Date(now),
    });
    return token;
  }

  /** Looks a presented token up (null when it is malformed or unknown). */
  async find(token: string): Promise<RefreshTokenRecord | null> {
    if (!TOKEN_SHAPE.test(token)) return null;
    return this.repository.findByHash(RefreshTokenService.hash(token));
  }

  /**
   * Marks the token used if, and only if, nobody has yet: one conditional UPDATE, so of any
   * number of concurrent presentations exactly one wins (the others wait on the row lock and
   * then find `used_at` set).
   */
  claim(tx: Transaction, tokenId: string): Promise<boolean> {
    return this.repository.markUsed(tx, tokenId, this.clock.now());
  }
}
