import { Injectable } from '@nestjs/common';
import { returnedRows, Transaction } from '@app/database';

/** A `mfa_backup_codes` row as the driver returns it (migration 1764300000000). */
interface BackupCodeRow {
  id: string;
  user_id: string;
  code_hash: string;
  /** Issued by an enrollment that is not verified yet: not usable until it is. */
  pending: boolean;
  used_at: Date | null;
  created_at: Date;
}

/** Every column of `mfa_backup_codes`, in table order. */
export const BACKUP_CODE_TABLE_COLUMNS: ReadonlyArray<keyof BackupCodeRow> = [
  'id',
  'user_id',
  'code_hash',
  'pending',
  'used_at',
  'created_at',
];

/** A single-use backup code, stored only as a keyed hash. */
export interface BackupCode {
  id: string;
  codeHash: string;
}

/** SQL of `mfa_backup_codes`. Every method runs in the caller's transaction. */
@Injectable()
export class BackupCodeRepository {
  /** Inserts codes of an enrollment not verified yet. */
  async insertPending(tx: Transaction, userId: string, codes: BackupCode[], now: Date): Promise<void> {
    await tx.query(
      `INSERT INTO mfa_backup_codes (id, user_id, code_hash, pending, created_at)
       SELECT id, $1::text, code_hash, true, $2::timestamptz FROM unnest($3::text[], $4::text[]) AS c(id, code_hash)`,
      [userId, now, codes.map((code) => code.id), codes.map((code) => code.codeHash)],
    );
  }

  /** Deletes the user's pending codes (`pending` true) or active ones (false), or all (undefined). */
  async delete(tx: Transaction, userId: string, pending?: boolean): Promise<void> {
    if (pending === undefined) await tx.query(`DELETE FROM mfa_backup_codes WHERE user_id = $1`, [userId]);
    else await tx.query(`DELETE FROM mfa_backup_codes WHERE user_id = $1 AND pending = $2`, [userId, pending]);
  }

  /** The pending codes become the active ones. */
  async activatePending(tx: Transaction, userId: string): Promise<void> {
    await tx.query(`UPDATE mfa_backup_codes SET pending = false WHERE user_id = $1 AND pending = true`, [userId]);
  }

  /** The user's active, unused codes. */
  async listUnused(tx: Transaction, userId: string): Promise<BackupCode[]> {
    const rows: Array<Pick<BackupCodeRow, 'id' | 'code_hash'>> = await tx.query(
      `SELECT id, code_hash FROM mfa_backup_codes WHERE user_id = $1 AND pending = false AND used_at IS NULL`,
      [userId],
    );
    return rows.map((row) => ({ id: row.id, codeHash: row.code_hash }));
  }

  /** Uses the code up if nobody has yet (conditional update). True when this call did. */
  async markUsed(tx: Transaction, id: string, now: Date): Promise<boolean> {
    const rows = returnedRows(
      await tx.query(`UPDATE mfa_backup_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL RETURNING id`, [id, now]),
    );
    return rows.length === 1;
  }
}
