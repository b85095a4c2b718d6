import { Injectable } from '@nestjs/common';
import { Clock, newId } from '@app/core';
import type { Transaction } from '@app/database';
import { BackupCode, BackupCodeRepository } from './backup-code.repository';
import { generateBackupCodes, normalizeBackupCode } from './mfa-codes';
import { MfaCrypto } from './mfa-crypto';

/** Single-use recovery codes: shown once, stored as keyed hashes, usable once the enrollment is verified. */
@Injectable()
export class BackupCodeService {
  constructor(
    private readonly repository: BackupCodeRepository,
    private readonly crypto: MfaCrypto,
    private readonly clock: Clock,
  ) {}

  /** Replaces any earlier pending set with fresh codes; returns the plain codes (the only time they exist). */
  async issuePending(tx: Transaction, userId: string): Promise<string[]> {
    await this.repository.delete(tx, userId, true);
    const codes = generateBackupCodes();
    await this.repository.insertPending(
      tx,
      userId,
      codes.map((code) => ({ id: newId('mbc'), codeHash: this.hash(userId, code) })),
      this.clock.now(),
    );
    return codes;
  }

  /** The enrollment was verified: its codes replace the old set. */
  async activatePending(tx: Transaction, userId: string): Promise<void> {
    await this.repository.delete(tx, userId, false);
    await this.repository.activatePending(tx, userId);
  }

  /** Every code of the user, pending or not (an administrator reset the factor). */
  async discardAll(tx: Transaction, userId: string): Promise<void> {
    await this.repository.delete(tx, userId);
  }

  /**
   * Uses up a backup code. Returns how many unused codes remain, or null when `input` is not an
   * unused code of this user. Safe against two concurrent uses of one code (conditional update).
   */
  async consume(tx: Transaction, userId: string, input: string): Promise<number | null> {
    const code = normalizeBackupCode(input);
    if (!code) return null;
    const hash = this.hash(userId, code);
    const unused = await this.repository.listUnused(tx, userId);
    let match: BackupCode | undefined;
    // Compare against every candidate (no early exit) in constant time per comparison.
    for (const candidate of unused) {
      if (MfaCrypto.sameHash(candidate.codeHash, hash)) match = candidate;
    }
    if (!match) return null;
    return (await this.repository.markUsed(tx, match.id, this.clock.now())) ? unused.length - 1 : null;
  }

  private hash(userId: string, code: string): string {
    return this.crypto.hashCode(`backup:${userId}`, code);
  }
}
