import type { Transaction } from '@app/database';
import type { BackupCode } from '../mfa/backup-code.repository';
import type { SmsChallenge, SmsChallengePurpose } from '../mfa/sms-challenge.repository';
import type { ActivatedFactor, FactorFailures, PendingFactor, UserMfa } from '../mfa/user-mfa.repository';

/** user_mfa in memory. */
export class InMemoryUserMfaRepository {
  readonly rows = new Map<string, UserMfa>();

  async find(_tx: Transaction, userId: string): Promise<UserMfa | null> {
    const row = this.rows.get(userId);
    return row ? { ...row } : null;
  }

  async lock(tx: Transaction, userId: string): Promise<UserMfa | null> {
    return this.find(tx, userId);
  }

  async insertEmpty(_tx: Transaction, userId: string, now: Date): Promise<void> {
    if (this.rows.has(userId)) return;
    this.rows.set(userId, {
      userId,
      type: null,
      secretCiphertext: null,
      phone: null,
      verifiedAt: null,
      lastTotpStep: null,
      pendingType: null,
      pendingSecretCiphertext: null,
      pendingPhone: null,
      pendingSince: null,
      failedAttempts: 0,
      failedWindowStart: null,
      lockedUntil: null,
      createdAt: now,
      updatedAt: now,
    });
  }

  async setPending(_tx: Transaction, userId: string, pending: PendingFactor, now: Date): Promise<void> {
    this.update(userId, {
      pendingType: pending.type,
      pendingSecretCiphertext: pending.secretCiphertext,
      pendingPhone: pending.phone,
      pendingSince: now,
      updatedAt: now,
    });
  }

  async activate(_tx: Transaction, userId: string, factor: ActivatedFactor, now: Date): Promise<void> {
    this.update(userId, {
      ...factor,
      verifiedAt: now,
      pendingType: null,
      pendingSecretCiphertext: null,
      pendingPhone: null,
      pendingSince: null,
      failedAttempts: 0,
      failedWindowStart: null,
      lockedUntil: null,
      updatedAt: now,
    });
  }

  async advanceTotpStep(_tx: Transaction, userId: string, step: number, now: Date): Promise<boolean> {
    const row = this.rows.get(userId);
    if (!row || (row.lastTotpStep !== null && Number(row.lastTotpStep) >= step)) return false;
    this.update(userId, { lastTotpStep: String(step), updatedAt: now });
    return true;
  }

  async setFailures(_tx: Transaction, userId: string, failures: FactorFailures, now: Date): Promise<void> {
    this.update(userId, { ...failures, updatedAt: now });
  }

  async clearFailures(_tx: Transaction, userId: string): Promise<void> {
    this.update(userId, { failedAttempts: 0, failedWindowStart: null, lockedUntil: null });
  }

  async delete(_tx: Transaction, userId: string): Promise<void> {
    this.rows.delete(userId);
  }

  private update(userId: string, change: Partial<UserMfa>): void {
    const row = this.rows.get(userId);
    if (row) Object.assign(row, change);
  }
}

interface StoredBackupCode extends BackupCode {
  userId: string;
  pending: boolean;
  usedAt: Date | null;
}

/** mfa_backup_codes in memory. */
export class InMemoryBackupCodeRepository {
  rows: StoredBackupCode[] = [];

  async insertPending(_tx: Transaction, userId: string, codes: BackupCode[]): Promise<void> {
    this.rows.push(...codes.map((code) => ({ ...code, userId, pending: true, usedAt: null })));
  }

  async delete(_tx: Transaction, userId: string, pending?: boolean): Promise<void> {
    this.rows = this.rows.filter((row) => row.userId !== userId || (pending !== undefined && row.pending !== pending));
  }

  async activatePending(_tx: Transaction, userId: string): Promise<void> {
    for (const row of this.rows) if (row.userId === userId) row.pending = false;
  }

  async listUnused(_tx: Transaction, userId: string): Promise<BackupCode[]> {
    return this.rows.filter((row) => row.userId === userId && !row.pending && !row.usedAt).map(({ id, codeHash }) => ({ id, codeHash }));
  }

  async markUsed(_tx: Transaction, id: string, now: Date): Promise<boolean> {
    const row = this.rows.find((r) => r.id === id);
    if (!row || row.usedAt) return false;
    row.usedAt = now;
    return true;
  }
}

/** mfa_sms_challenges in memory. */
export class InMemorySmsChallengeRepository {
  rows: SmsChallenge[] = [];

  async findRecentUsable(
    _tx: Transaction,
    userId: string,
    purpose: SmsChallengePurpose,
    createdAfter: Date,
    now: Date,
  ): Promise<SmsChallenge | null> {
    return (
      this.rows.find((r) => r.userId === userId && r.purpose === purpose && !r.usedAt && r.createdAt > createdAfter && r.expiresAt > now) ??
      null
    );
  }

  async findNewestUnused(_tx: Transaction, userId: string, purpose: SmsChallengePurpose): Promise<SmsChallenge | null> {
    const unused = this.rows.filter((r) => r.userId === userId && r.purpose === purpose && !r.usedAt);
    return unused.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0] ?? null;
  }

  async insert(_tx: Transaction, challenge: SmsChallenge): Promise<void> {
    this.rows.push({ ...challenge });
  }

  async reserveAttempt(_tx: Transaction, id: string, max: number): Promise<boolean> {
    const row = this.rows.find((r) => r.id === id);
    if (!row || row.usedAt || row.attempts >= max) return false;
    row.attempts++;
    return true;
  }

  async markUsed(_tx: Transaction, id: string, now: Date): Promise<boolean> {
    const row = this.rows.find((r) => r.id === id);
    if (!row || row.usedAt) return false;
    row.usedAt = now;
    return true;
  }

  async delete(_tx: Transaction, userId: string, purpose?: SmsChallengePurpose): Promise<void> {
    this.rows = this.rows.filter((r) => r.userId !== userId || (purpose !== undefined && r.purpose !== purpose));
  }
}
