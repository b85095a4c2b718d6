import { Column, CreateDateColumn, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import type { Role } from '@app/core';

export type UserStatus = 'active' | 'suspended' | 'deleted';

@Entity('users')
export class UserEntity {
  @PrimaryColumn({ type: 'text' }) id: string;
  /** Stored lower-cased; unique. */
  @Column({ type: 'text' }) email: string;
  @Column({ type: 'text' }) name: string;
  @Column({ type: 'text', nullable: true }) organization: string | null;
  @Column({ type: 'text', nullable: true }) phone: string | null;
  @Column({ name: 'password_hash', type: 'text', select: false }) passwordHash: string;
  @Column({ type: 'text', array: true, default: () => "'{user}'" }) roles: Role[];
  /** Grants on top of the roles' defaults. */
  @Column({ type: 'text', array: true, default: () => "'{}'" }) permissions: string[];
  @Column({ type: 'text', default: 'active' }) status: UserStatus;
  @Column({ name: 'mfa_enabled', type: 'boolean', default: false }) mfaEnabled: boolean;
  @Column({ name: 'last_login', type: 'timestamptz', nullable: true }) lastLogin: Date | null;
  /** Failed logins (password or MFA) counted since failedWindowStart. */
  @Column({ name: 'failed_logins', type: 'integer', default: 0 }) failedLogins: number;
  @Column({ name: 'failed_window_start', type: 'timestamptz', nullable: true }) failedWindowStart: Date | null;
  @Column({ name: 'locked_until', type: 'timestamptz', nullable: true }) lockedUntil: Date | null;
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}
