import { Injectable } from '@nestjs/common';
import { EntityManager, IsNull } from 'typeorm';
import { Clock, newId } from '@app/core';
import { MfaBackupCodeEntity } from './entities/mfa-backup-code.entity';
import { generateBackupCodes, normalizeBackupCode } from './mfa-codes';
import { MfaCrypto } from './mfa-crypto';

/** Single-use recovery codes: shown once, stored as keyed hashes, usable once the enrollment is verified. */
@Injectable()
export class BackupCodeService {
  constructor(
    private readonly crypto: MfaCrypto,
    private readonly clock: Clock,
  ) {}

  /** Replaces any earlier pending set with fresh codes; returns the plain codes (the only time they exist). */
  async issuePending(manager: EntityManager, userId: string): Promise<string[]> {
    await manager.delete(MfaBackupCodeEntity, { userId, pending: true });
    const codes = generateBackupCodes();
    const now = this.clock.now();
    await manager.insert(
      MfaBackupCodeEntity,
      codes.map((code) => ({ id: newId('mbc'), userId, codeHash: this.hash(userId, code), pending: true, usedAt: null, createdAt: now })),
    );
    return codes;
  }

  /** The enrollment was verified: its codes replace the old set. */
  async activatePending(manager: EntityManager, userId: string): Promise<void> {
    await manager.delete(MfaBackupCodeEntity, { userId, pending: false });
    await manager.update(MfaBackupCodeEntity, { userId, pending: true }, { pending: false });
  }

  /** Every code of the user, pending or not (an administrator reset the factor). */
  async discardAll(manager: EntityManager, userId: string): Promise<void> {
    await manager.delete(MfaBackupCodeEntity, { userId });
  }

  /**
   * Uses up a backup code. Returns how many unused codes remain, or null when `input` is not an
   * unused code of this user. Safe against two concurrent uses of one code (conditional update).
   */
  async consume(manager: EntityManager, userId: string, input: string): Promise<number | null> {
    const code = normalizeBackupCode(input);
    if (!code) return null;
    const hash = this.hash(userId, code);
    const unused = await manager.find(MfaBackupCodeEntity, { where: { userId, pending: false, usedAt: IsNull() } });
    let match: MfaBackupCodeEntity | undefined;
    // Compare against every candidate (no early exit) in constant time per comparison.
    for (const candidate of unused) {
      if (MfaCrypto.sameHash(candidate.codeHash, hash)) match = candidate;
    }
    if (!match) return null;
    const result = await manager
      .createQueryBuilder()
      .update(MfaBackupCodeEntity)
      .set({ usedAt: this.clock.now() })
      .where('id = :id AND used_at IS NULL', { id: match.id })
      .execute();
    return result.affected === 1 ? unused.length - 1 : null;
  }

  private hash(userId: string, code: string): string {
    return this.crypto.hashCode(`backup:${userId}`, code);
  }
}
