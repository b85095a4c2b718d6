import { Column, Entity, PrimaryColumn } from 'typeorm';

/** `enroll` proves a pending phone; `login` proves the active one (login, or replacing the factor). */
export type SmsChallengePurpose = 'enroll' | 'login';

/** One SMS code sent: hashed, short-lived, single use, with a bounded number of tries. */
@Entity('mfa_sms_challenges')
export class MfaSmsChallengeEntity {
  @PrimaryColumn({ type: 'text' }) id: string;
  @Column({ name: 'user_id', type: 'text' }) userId: string;
  @Column({ type: 'text' }) purpose: SmsChallengePurpose;
  @Column({ name: 'code_hash', type: 'text' }) codeHash: string;
  @Column({ name: 'expires_at', type: 'timestamptz' }) expiresAt: Date;
  @Column({ type: 'integer', default: 0 }) attempts: number;
  @Column({ name: 'used_at', type: 'timestamptz', nullable: true }) usedAt: Date | null;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
}
