import { Inject, Injectable } from '@nestjs/common';
import { AuditAction, auditEvent, AuditService } from '@app/audit';
import { APP_CONFIG, AppConfig, AppException, Clock, SignedInActor } from '@app/core';
import { UnitOfWork } from '@app/database';
import { SessionService } from '@app/sessions';
import { LockoutPolicy, lockoutPolicyOf, UsersService } from '@app/users';
import { AuthErrorCode, invalidToken } from '../auth.errors';
import { ChangePasswordResponseDto } from '../dto/change-password-response.dto';
import { PasswordService } from './password.service';

/** Session end reason when the user changes their password. */
export const PASSWORD_CHANGED_SESSION_REASON = 'password_changed';

/**
 * The signed-in user changes their own password (ASVS V6): proof of the current one, the
 * registration policy for the new one, and every other session of the account ends with it,
 * in the transaction that writes the hash and the audit record. Wrong current passwords count
 * toward the login lockout, so a stolen access token cannot be used to guess the password.
 */
@Injectable()
export class PasswordChangeService {
  private readonly lockout: LockoutPolicy;

  constructor(
    private readonly unitOfWork: UnitOfWork,
    private readonly users: UsersService,
    private readonly sessions: SessionService,
    private readonly passwords: PasswordService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.lockout = lockoutPolicyOf(config);
  }

  async change(caller: SignedInActor, currentPassword: string, newPassword: string): Promise<ChangePasswordResponseDto> {
    const userId = caller.principal.userId;
    const about = { resource: `user:${userId}`, metadata: { sessionId: caller.principal.sessionId } };
    const user = await this.users.findById(userId);
    if (!user) throw invalidToken();
    const locked = this.lockedFor(user.lockedUntil);
    if (locked > 0) {
      await this.audit.recordStandalone(
        auditEvent(AuditAction.AUTH_PASSWORD_CHANGE_FAILED, caller, { ...about, result: 'failure', details: { reason: 'locked' } }),
      );
      throw accountLocked(locked);
    }
    if (newPassword === currentPassword) {
      throw AppException.validation([
        { field: 'newPassword', message: 'newPassword must differ from the current password', code: 'differentPassword' },
      ]);
    }
    // bcrypt outside the transaction: no row lock (or the embedded database's one connection) held for it.
    const currentHash = await this.users.passwordHashOf(userId);
    if (!currentHash || !(await this.passwords.verify(currentPassword, currentHash))) {
      await this.unitOfWork.run(async (tx) => {
        const lockedUntil = await this.users.registerFailedLogin(tx, userId, this.clock.now(), this.lockout);
        await this.audit.record(
          tx,
          auditEvent(AuditAction.AUTH_PASSWORD_CHANGE_FAILED, caller, {
            ...about,
            result: 'failure',
            details: { reason: 'wrong_current_password', locked: lockedUntil !== null },
          }),
        );
      });
      throw new AppException(AuthErrorCode.INVALID_CURRENT_PASSWORD, 'The current password is not correct', 400, [
        { field: 'currentPassword', message: 'does not match the account password', code: AuthErrorCode.INVALID_CURRENT_PASSWORD },
      ]);
    }
    const newHash = await this.passwords.hash(newPassword);

    const sessionsEnded = await this.unitOfWork.run(async (tx) => {
      const now = this.clock.now();
      // Conditional on the hash just verified: a concurrent change in between wins, this one is refused.
      if (!(await this.users.replacePasswordHash(tx, userId, currentHash, newHash, now))) return null;
      const ended = await this.sessions.endAllForUser(tx, userId, PASSWORD_CHANGED_SESSION_REASON, {
        exceptSessionId: caller.principal.sessionId,
        endedBy: userId,
      });
      await this.audit.record(
        tx,
        auditEvent(AuditAction.AUTH_PASSWORD_CHANGED, caller, { ...about, severity: 'warning', details: { sessionsEnded: ended } }),
      );
      return ended;
    });
    if (sessionsEnded === null) {
      throw AppException.conflict('The password was changed by another request meanwhile; sign in again with the new one');
    }
    return { message: 'Password changed', sessionsEnded, timestamp: this.clock.now().toISOString() };
  }

  private lockedFor(lockedUntil: Date | null): number {
    const left = (lockedUntil?.getTime() ?? 0) - this.clock.nowMs();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }
}

function accountLocked(retryAfterSec: number): AppException {
  return new AppException(AuthErrorCode.ACCOUNT_LOCKED, 'Too many wrong passwords; try again later', 429, [], {
    'Retry-After': String(retryAfterSec),
  });
}
