import { Injectable } from '@nestjs/common';
import { returnedRows, Transaction } from '@app/database';

export type MfaType = 'totp' | 'sms';
export const MFA_TYPES: readonly MfaType[] = ['totp', 'sms'];

/**
 * A user's second factor. The unprefixed fields hold the ACTIVE factor (set once verified);
 * the `pending*` fields hold an enrollment that has not been verified yet, so replacing a
 * factor never weakens the account until the new one is proven.
 */
export interface UserMfa {
  userId: string;
  type: MfaType | null;
  /** TOTP seed, AES-256-GCM encrypted (MfaCrypto). */
  secretCiphertext: string | null;
  phone: string | null;
  verifiedAt: Date | null;
  /** Last TOTP step accepted: a code is accepted only for a later step (replay protection). bigint arrives as a string. */
  lastTotpStep: string | null;
  pendingType: MfaType | null;
  pendingSecretCiphertext: string | null;
  pendingPhone: string | null;
  pendingSince: Date | null;
  /** Wrong codes against the active factor on authenticated routes (verify, currentCode). */
  failedAttempts: number;
  failedWindowStart: Date | null;
  lockedUntil: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A `user_mfa` row as the driver returns it (migration 1764300000000). */
interface UserMfaRow {
  user_id: string;
  type: MfaType | null;
  secret_ciphertext: string | null;
  phone: string | null;
  verified_at: Date | null;
  last_totp_step: string | null;
  pending_type: MfaType | null;
  pending_secret_ciphertext: string | null;
  pending_phone: string | null;
  pending_since: Date | null;
  failed_attempts: number;
  failed_window_start: Date | null;
  locked_until: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** Every column of `user_mfa`, in table order. */
export const USER_MFA_TABLE_COLUMNS: ReadonlyArray<keyof UserMfaRow> = [
  'user_id',
  'type',
  'secret_ciphertext',
  'phone',
  'verified_at',
  'last_totp_step',
  'pending_type',
  'pending_secret_ciphertext',
  'pending_phone',
  'pending_since',
  'failed_attempts',
  'failed_window_start',
  'locked_until',
  'created_at',
  'updated_at',
];

const USER_MFA_COLUMNS = USER_MFA_TABLE_COLUMNS.join(', ');

const dateOrNull = (value: Date | string | null): Date | null => (value === null ? null : new Date(value));

function userMfaOf(row: UserMfaRow): UserMfa {
  return {
    userId: row.user_id,
    type: row.type,
    secretCiphertext: row.secret_ciphertext,
    phone: row.phone,
    verifiedAt: dateOrNull(row.verified_at),
    lastTotpStep: row.last_totp_step === null ? null : String(row.last_totp_step),
    pendingType: row.pending_type,
    pendingSecretCiphertext: row.pending_secret_ciphertext,
    pendingPhone: row.pending_phone,
    pendingSince: dateOrNull(row.pending_since),
    failedAttempts: Number(row.failed_attempts),
    failedWindowStart: dateOrNull(row.failed_window_start),
    lockedUntil: dateOrNull(row.locked_until),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** An enrollment about to be proven. */
export interface PendingFactor {
  type: MfaType;
  secretCiphertext: string | null;
  phone: string | null;
}

/** The proven factor that becomes the active one. */
export interface ActivatedFactor {
  type: MfaType;
  secretCiphertext: string | null;
  phone: string | null;
  /** The TOTP step the enrollment code used (spent), as a decimal string. */
  lastTotpStep: string | null;
}

/** The wrong-code count of the active factor. */
export interface FactorFailures {
  failedAttempts: number;
  failedWindowStart: Date | null;
  lockedUntil: Date | null;
}

/** SQL of `user_mfa`. Every method runs in the caller's transaction. */
@Injectable()
export class UserMfaRepository {
  async find(tx: Transaction, userId: string): Promise<UserMfa | null> {
    const [row]: UserMfaRow[] = await tx.query(`SELECT ${USER_MFA_COLUMNS} FROM user_mfa WHERE user_id = $1`, [userId]);
    return row ? userMfaOf(row) : null;
  }

  /** Locks the row for the rest of the transaction and returns it. */
  async lock(tx: Transaction, userId: string): Promise<UserMfa | null> {
    const [row]: UserMfaRow[] = await tx.query(`SELECT ${USER_MFA_COLUMNS} FROM user_mfa WHERE user_id = $1 FOR UPDATE`, [userId]);
    return row ? userMfaOf(row) : null;
  }

  /** An empty row when the user has none (concurrent first enrollments then serialise on it). */
  async insertEmpty(tx: Transaction, userId: string, now: Date): Promise<void> {
    await tx.query(
      `INSERT INTO user_mfa (user_id, failed_attempts, created_at, updated_at) VALUES ($1, 0, $2, $2) ON CONFLICT DO NOTHING`,
      [userId, now],
    );
  }

  async setPending(tx: Transaction, userId: string, pending: PendingFactor, now: Date): Promise<void> {
    await tx.query(
      `UPDATE user_mfa SET pending_type = $2, pending_secret_ciphertext = $3, pending_phone = $4, pending_since = $5, updated_at = $5
        WHERE user_id = $1`,
      [userId, pending.type, pending.secretCiphertext, pending.phone, now],
    );
  }

  /** The enrollment becomes the active factor; the pending fields and the failure count are cleared. */
  async activate(tx: Transaction, userId: string, factor: ActivatedFactor, now: Date): Promise<void> {
    await tx.query(
      `UPDATE user_mfa SET type = $2, secret_ciphertext = $3, phone = $4, verified_at = $5, last_totp_step = $6,
              pending_type = NULL, pending_secret_ciphertext = NULL, pending_phone = NULL, pending_since = NULL,
              failed_attempts = 0, failed_window_start = NULL, locked_until = NULL, updated_at = $5
        WHERE user_id = $1`,
      [userId, factor.type, factor.secretCiphertext, factor.phone, now, factor.lastTotpStep],
    );
  }

  /**
   * Moves the last accepted TOTP step forward to `step`, only if it is later: of two concurrent
   * uses of one code, only one does. True when this call did.
   */
  async advanceTotpStep(tx: Transaction, userId: string, step: number, now: Date): Promise<boolean> {
    const rows = returnedRows(
      await tx.query(
        `UPDATE user_mfa SET last_totp_step = $2, updated_at = $3
          WHERE user_id = $1 AND (last_totp_step IS NULL OR last_totp_step < $2) RETURNING user_id`,
        [userId, String(step), now],
      ),
    );
    return rows.length === 1;
  }

  async setFailures(tx: Transaction, userId: string, failures: FactorFailures, now: Date): Promise<void> {
    await tx.query(
      `UPDATE user_mfa SET failed_attempts = $2, failed_window_start = $3, locked_until = $4, updated_at = $5 WHERE user_id = $1`,
      [userId, failures.failedAttempts, failures.failedWindowStart, failures.lockedUntil, now],
    );
  }

  async clearFailures(tx: Transaction, userId: string): Promise<void> {
    await tx.query(`UPDATE user_mfa SET failed_attempts = 0, failed_window_start = NULL, locked_until = NULL WHERE user_id = $1`, [userId]);
  }

  async delete(tx: Transaction, userId: string): Promise<void> {
    await tx.query(`DELETE FROM user_mfa WHERE user_id = $1`, [userId]);
  }
}
