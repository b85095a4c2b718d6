import { Column, Entity, PrimaryColumn } from 'typeorm';

export type MfaType = 'totp' | 'sms';
export const MFA_TYPES: readonly MfaType[] = ['totp', 'sms'];

/**
 * A user's second factor. The unprefixed columns hold the ACTIVE factor (set once verified);
 * the `pending*` columns hold an enrollment that has not been verified yet, so replacing a
 * factor never weakens the account until the new one is proven.
 */
@Entity('user_mfa')
export class UserMfaEntity {
  @PrimaryColumn({ name: 'user_id', type: 'text' }) userId: string;
  @Column({ type: 'text', nullable: true }) type: MfaType | null;
  /** TOTP seed, AES-256-GCM encrypted (MfaCrypto). Never selected unless needed. */
  @Column({ name: 'secret_ciphertext', type: 'text', nullable: true, select: false }) secretCiphertext: string | null;
  @Column({ type: 'text', nullable: true }) phone: string | null;
  @Column({ name: 'verified_at', type: 'timestamptz', nullable: true }) verifiedAt: Date | null;
  /** Last TOTP step accepted: a code is accepted only for a later step (replay protection). bigint arrives as a string. */
  @Column({ name: 'last_totp_step', type: 'bigint', nullable: true }) lastTotpStep: string | null;
  @Column({ name: 'pending_type', type: 'text', nullable: true }) pendingType: MfaType | null;
  @Column({ name: 'pending_secret_ciphertext', type: 'text', nullable: true, select: false }) pendingSecretCiphertext: string | null;
  @Column({ name: 'pending_phone', type: 'text', nullable: true }) pendingPhone: string | null;
  @Column({ name: 'pending_since', type: 'timestamptz', nullable: true }) pendingSince: Date | null;
  /** Wrong codes against the active factor on authenticated routes (verify, currentCode). */
  @Column({ name: 'failed_attempts', type: 'integer', default: 0 }) failedAttempts: number;
  @Column({ name: 'failed_window_start', type: 'timestamptz', nullable: true }) failedWindowStart: Date | null;
  @Column({ name: 'locked_until', type: 'timestamptz', nullable: true }) lockedUntil: Date | null;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}
