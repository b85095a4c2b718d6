import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Second factors. `user_mfa` keeps the active factor and, separately, an enrollment in
 * progress (pending_*), so replacing a factor leaves the old one in force until the new one
 * is verified. Codes are stored only as keyed hashes; TOTP seeds only encrypted.
 */
export class Mfa1764300000000 implements MigrationInterface {
  name = 'Mfa1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE user_mfa (
        user_id text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
        type text CHECK (type IN ('totp', 'sms')),
        secret_ciphertext text,
        phone text,
        verified_at timestamptz,
        last_totp_step bigint,
        pending_type text CHECK (pending_type IN ('totp', 'sms')),
        pending_secret_ciphertext text,
        pending_phone text,
        pending_since timestamptz,
        failed_attempts integer NOT NULL DEFAULT 0,
        failed_window_start timestamptz,
        locked_until timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT user_mfa_active_complete CHECK (
          verified_at IS NULL
          OR (type = 'totp' AND secret_ciphertext IS NOT NULL)
          OR (type = 'sms' AND phone IS NOT NULL)
        ),
        CONSTRAINT user_mfa_pending_complete CHECK (
          pending_type IS NULL
          OR (pending_type = 'totp' AND pending_secret_ciphertext IS NOT NULL)
          OR (pending_type = 'sms' AND pending_phone IS NOT NULL)
        )
      )`);
    await q.query(`
      CREATE TABLE mfa_backup_codes (
        id text PRIMARY KEY,
        user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        code_hash text NOT NULL,
        pending boolean NOT NULL DEFAULT true,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX mfa_backup_codes_user_idx ON mfa_backup_codes (user_id)`);
    await q.query(`
      CREATE TABLE mfa_sms_challenges (
        id text PRIMARY KEY,
        user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        purpose text NOT NULL CHECK (purpose IN ('enroll', 'login')),
        code_hash text NOT NULL,
        expires_at timestamptz NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX mfa_sms_challenges_user_idx ON mfa_sms_challenges (user_id, purpose, created_at DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE mfa_sms_challenges`);
    await q.query(`DROP TABLE mfa_backup_codes`);
    await q.query(`DROP TABLE user_mfa`);
  }
}
