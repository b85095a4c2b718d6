import { Column, Entity, PrimaryColumn } from 'typeorm';

/** One single-use backup code, stored only as a keyed hash. */
@Entity('mfa_backup_codes')
export class MfaBackupCodeEntity {
  @PrimaryColumn({ type: 'text' }) id: string;
  @Column({ name: 'user_id', type: 'text' }) userId: string;
  @Column({ name: 'code_hash', type: 'text' }) codeHash: string;
  /** Issued by an enrollment that is not verified yet: not usable until it is. */
  @Column({ type: 'boolean', default: true }) pending: boolean;
  @Column({ name: 'used_at', type: 'timestamptz', nullable: true }) usedAt: Date | null;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
}
