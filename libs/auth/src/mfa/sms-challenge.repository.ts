import { Injectable } from '@nestjs/common';
import { returnedRows, Transaction } from '@app/database';

/** `enroll` proves a pending phone; `login` proves the active one (login, or replacing the factor). */
export type SmsChallengePurpose = 'enroll' | 'login';

/** One SMS code sent: hashed, short-lived, single use, with a bounded number of tries. */
export interface SmsChallenge {
  id: string;
  userId: string;
  purpose: SmsChallengePurpose;
  codeHash: string;
  expiresAt: Date;
  attempts: number;
  usedAt: Date | null;
  createdAt: Date;
}

/** A `mfa_sms_challenges` row as the driver returns it (migration 1764300000000). */
interface SmsChallengeRow {
  id: string;
  user_id: string;
  purpose: SmsChallengePurpose;
  code_hash: string;
  expires_at: Date;
  attempts: number;
  used_at: Date | null;
  created_at: Date;
}

/** Every column of `mfa_sms_challenges`, in table order. */
export const SMS_CHALLENGE_TABLE_COLUMNS: ReadonlyArray<keyof SmsChallengeRow> = [
  'id',
  'user_id',
  'purpose',
  'code_hash',
  'expires_at',
  'attempts',
  'used_at',
  'created_at',
];

const SMS_CHALLENGE_COLUMNS = SMS_CHALLENGE_TABLE_COLUMNS.join(', ');

function challengeOf(row: SmsChallengeRow): SmsChallenge {
  return {
    id: row.id,
    userId: row.user_id,
    purpose: row.purpose,
    codeHash: row.code_hash,
    expiresAt: new Date(row.expires_at),
    attempts: Number(row.attempts),
    usedAt: row.used_at === null ? null : new Date(row.used_at),
    createdAt: new Date(row.created_at),
  };
}

/** SQL of `mfa_sms_challenges`. Every method runs in the caller's transaction. */
@Injectable()
export class SmsChallengeRepository {
  /** An unused, unexpired challenge of the purpose created after `createdAfter`, if any. */
  async findRecentUsable(
    tx: Transaction,
    userId: string,
    purpose: SmsChallengePurpose,
    createdAfter: Date,
    now: Date,
  ): Promise<SmsChallenge | null> {
    const [row]: SmsChallengeRow[] = await tx.query(
      `SELECT ${SMS_CHALLENGE_COLUMNS} FROM mfa_sms_challenges
        WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL AND created_at > $3 AND expires_at > $4
        LIMIT 1`,
      [userId, purpose, createdAfter, now],
    );
    return row ? challengeOf(row) : null;
  }

  /** The newest unused challenge of the purpose (expired or not). */
  async findNewestUnused(tx: Transaction, userId: string, purpose: SmsChallengePurpose): Promise<SmsChallenge | null> {
    const [row]: SmsChallengeRow[] = await tx.query(
      `SELECT ${SMS_CHALLENGE_COLUMNS} FROM mfa_sms_challenges
        WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL
        ORDER BY created_at DESC LIMIT 1`,
      [userId, purpose],
    );
    return row ? challengeOf(row) : null;
  }

  async insert(tx: Transaction, challenge: SmsChallenge): Promise<void> {
    await tx.query(
      `INSERT INTO mfa_sms_challenges (id, user_id, purpose, code_hash, expires_at, attempts, used_at, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        challenge.id,
        challenge.userId,
        challenge.purpose,
        challenge.codeHash,
        challenge.expiresAt,
        challenge.attempts,
        challenge.usedAt,
        challenge.createdAt,
      ],
    );
  }

  /** Takes one of the challenge's attempts if it is unused and has fewer than `max`. True when this call did. */
  async reserveAttempt(tx: Transaction, id: string, max: number): Promise<boolean> {
    const rows = returnedRows(
      await tx.query(
        `UPDATE mfa_sms_challenges SET attempts = attempts + 1 WHERE id = $1 AND used_at IS NULL AND attempts < $2 RETURNING id`,
        [id, max],
      ),
    );
    return rows.length === 1;
  }

  /** Uses the challenge up if nobody has yet. True when this call did. */
  async markUsed(tx: Transaction, id: string, now: Date): Promise<boolean> {
    const rows = returnedRows(
      await tx.query(`UPDATE mfa_sms_challenges SET used_at = $2 WHERE id = $1 AND used_at IS NULL RETURNING id`, [id, now]),
    );
    return rows.length === 1;
  }

  /** Deletes the user's challenges of the purpose, or of every purpose. */
  async delete(tx: Transaction, userId: string, purpose?: SmsChallengePurpose): Promise<void> {
    if (purpose) await tx.query(`DELETE FROM mfa_sms_challenges WHERE user_id = $1 AND purpose = $2`, [userId, purpose]);
    else await tx.query(`DELETE FROM mfa_sms_challenges WHERE user_id = $1`, [userId]);
  }
}
