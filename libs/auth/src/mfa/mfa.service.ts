import { Inject, Injectable, Logger } from '@nestjs/common';
import { AuditAction, auditEvent, AuditService, SYSTEM_ACTOR } from '@app/audit';
import type { AuditResult, AuditSeverity } from '@app/audit';
import { APP_CONFIG, AppConfig, AppException, Clock } from '@app/core';
import type { SignedInActor } from '@app/core';
import { Transaction, UnitOfWork } from '@app/database';
import { SessionService } from '@app/sessions';
import { UsersService } from '@app/users';
import { BackupCodeService } from './backup-code.service';
import { SmsChallengePurpose } from './sms-challenge.repository';
import { MfaType, UserMfa, UserMfaRepository } from './user-mfa.repository';
import { isSixDigitCode, maskPhone, normalizeBackupCode } from './mfa-codes';
import { MfaCrypto } from './mfa-crypto';
import { MfaErrorCode } from './mfa-error-codes';
import { SmsChallengeService } from './sms-challenge.service';
import { SmsSender } from './sms/sms-sender';
import { generateTotpSecret, isFreshTotpStep, matchTotpStep, totpUri } from './totp';

/** Who is asking, from where: for the audit records of the MFA routes. */
export type MfaCaller = SignedInActor;

export interface EnableMfaInput {
  type: MfaType;
  phoneNumber?: string;
  /** Proof of the active factor, required to replace one: TOTP, SMS or backup code. */
  currentCode?: string;
}

export interface EnableMfaResult {
  secret?: string;
  qrCode?: string;
  backupCodes: string[];
}

export interface VerifyMfaResult {
  verified: true;
  timestamp: string;
}

/** An SMS to send once the transaction that created its challenge has committed. */
interface PendingSms {
  userId: string;
  purpose: SmsChallengePurpose;
  phone: string;
  code: string;
}

type EnableOutcome =
  | { kind: 'pending'; secret: string | null; backupCodes: string[]; sms: PendingSms | null }
  | { kind: 'already-enabled'; sms: PendingSms | null }
  | { kind: 'invalid-current-code' }
  | { kind: 'locked'; retryAfterSec: number };

type VerifyOutcome = { kind: 'verified' } | { kind: 'invalid' } | { kind: 'nothing-to-verify' } | { kind: 'locked'; retryAfterSec: number };

/**
 * Second factors: TOTP (with replay protection), SMS codes and backup codes. Enrollment is
 * pending until verified; an active factor is replaced only on proof of it, and activation ends
 * the user's other sessions. Every change commits with its audit record.
 */
@Injectable()
export class MfaService {
  private readonly logger = new Logger(MfaService.name);

  constructor(
    private readonly unitOfWork: UnitOfWork,
    private readonly factors: UserMfaRepository,
    private readonly users: UsersService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly crypto: MfaCrypto,
    private readonly backupCodes: BackupCodeService,
    private readonly smsChallenges: SmsChallengeService,
    private readonly smsSender: SmsSender,
    private readonly audit: AuditService,
    private readonly sessions: SessionService,
  ) {}

  /**
   * Login with MFA on and no code: for SMS MFA send a fresh code (TOTP: nothing to do). A code
   * younger than SMS_RESEND_COOLDOWN_MS is not re-sent. Opens its own transaction: call it
   * outside any open one (the embedded database has a single connection).
   */
  async startLoginChallenge(userId: string): Promise<void> {
    const sms = await this.unitOfWork.run(async (tx) => {
      const factor = await this.factors.find(tx, userId);
      if (!factor || !isActive(factor) || factor.type !== 'sms' || !factor.phone) return null;
      const code = await this.smsChallenges.issue(tx, userId, 'login', true);
      return code ? { userId, purpose: 'login' as const, phone: factor.phone, code } : null;
    });
    if (sms) await this.deliver(sms);
  }

  /**
   * Login second factor: a TOTP code, an SMS code, or a backup code (format xxxx-xxxx). Consumes
   * what it accepts (replay-safe). Runs in the login transaction (every query uses `tx`).
   * Returns false for a wrong code; never throws for one.
   */
  async verifyLoginCode(tx: Transaction, userId: string, code: string): Promise<boolean> {
    if (typeof code !== 'string' || code.length > 64) return false;
    // Users row first, as enable/verify do: the same lock order everywhere, so no deadlock.
    await this.users.lock(tx, userId);
    const factor = await this.factors.find(tx, userId);
    if (!factor || !isActive(factor)) return false;
    return this.checkActiveFactor(tx, factor, code, null);
  }

  /** POST /auth/mfa/enable: starts an enrollment (pending until verified). */
  async enable(caller: MfaCaller, input: EnableMfaInput): Promise<EnableMfaResult> {
    const userId = caller.principal.userId;
    const outcome = await this.unitOfWork.run(async (tx): Promise<EnableOutcome> => {
      const factor = await this.lockFactor(tx, userId, true);
      const replacing = factor !== null && isActive(factor);
      if (factor && replacing) {
        if (!input.currentCode) {
          // An SMS user has no code at hand: send one, so the retry can carry it.
          const code = factor.type === 'sms' && factor.phone ? await this.smsChallenges.issue(tx, userId, 'login', true) : null;
          await this.record(tx, caller, AuditAction.AUTH_MFA_ENABLE, 'failure', 'warning', {
            type: input.type,
            reason: 'mfa_already_enabled',
          });
          return { kind: 'already-enabled', sms: code && factor.phone ? { userId, purpose: 'login', phone: factor.phone, code } : null };
        }
        const locked = this.lockedFor(factor);
        if (locked > 0) {
          await this.record(tx, caller, AuditAction.AUTH_MFA_ENABLE, 'failure', 'warning', { type: input.type, reason: 'mfa_locked' });
          return { kind: 'locked', retryAfterSec: locked };
        }
        if (!(await this.checkActiveFactor(tx, factor, input.currentCode, caller))) {
          await this.registerFailure(tx, factor);
          await this.record(tx, caller, AuditAction.AUTH_MFA_ENABLE, 'failure', 'warning', {
            type: input.type,
            reason: 'invalid_current_code',
          });
          return { kind: 'invalid-current-code' };
        }
        await this.clearFailures(tx, userId);
      }

      const now = this.clock.now();
      const secret = input.type === 'totp' ? generateTotpSecret() : null;
      const phone = input.type === 'sms' ? (input.phoneNumber ?? null) : null;
      await this.factors.setPending(
        tx,
        userId,
        { type: input.type, secretCiphertext: secret ? this.crypto.encryptSeed(secret, userId) : null, phone },
        now,
      );
      const backupCodes = await this.backupCodes.issuePending(tx, userId);
      // A new enrollment voids codes sent for an earlier one.
      const smsCode = phone ? await this.smsChallenges.issue(tx, userId, 'enroll') : null;
      if (!phone) await this.smsChallenges.discard(tx, userId, 'enroll');
      await this.record(tx, caller, AuditAction.AUTH_MFA_ENABLE, 'success', replacing ? 'warning' : 'info', {
        type: input.type,
        status: 'pending_verification',
        replacing,
        ...(phone ? { phone: maskPhone(phone) } : {}),
      });
      return {
        kind: 'pending',
        secret,
        backupCodes,
        sms: phone && smsCode ? { userId, purpose: 'enroll', phone, code: smsCode } : null,
      };
    });

    switch (outcome.kind) {
      case 'already-enabled':
        if (outcome.sms) await this.deliver(outcome.sms);
        throw new AppException(
          MfaErrorCode.MFA_ALREADY_ENABLED,
          outcome.sms
            ? 'MFA is already enabled. A code was sent to your phone: repeat the request with it as currentCode.'
            : 'MFA is already enabled. To replace it, repeat the request with a current code (or a backup code) as currentCode.',
          409,
        );
      case 'invalid-current-code':
        throw new AppException(
          MfaErrorCode.MFA_ALREADY_ENABLED,
          'MFA is already enabled and currentCode is not a valid current code',
          409,
          [{ field: 'currentCode', message: 'not a valid current MFA code', code: MfaErrorCode.MFA_INVALID_CODE }],
        );
      case 'locked':
        throw lockedError(outcome.retryAfterSec);
      case 'pending':
        break;
    }
    if (outcome.sms) await this.deliver(outcome.sms);
    if (!outcome.secret) return { backupCodes: outcome.backupCodes };
    const uri = totpUri(outcome.secret, this.config.mfa.issuer, caller.principal.email);
    return {
      secret: outcome.secret,
      // Loaded on first enrollment, not at start (issue 18, P8).
      qrCode: await (await import('qrcode')).toDataURL(uri, { errorCorrectionLevel: 'M', type: 'image/png', margin: 2 }),
      backupCodes: outcome.backupCodes,
    };
  }

  /** POST /auth/mfa/verify: proves the pending enrollment (and activates it) or the active factor. */
  async verify(caller: MfaCaller, type: MfaType, input: string): Promise<VerifyMfaResult> {
    const userId = caller.principal.userId;
    const code = input.trim();
    const outcome = await this.unitOfWork.run(async (tx): Promise<VerifyOutcome> => {
      const factor = await this.lockFactor(tx, userId, false);
      if (factor?.pendingType === type) return this.verifyPending(tx, caller, factor, code);
      if (factor && isActive(factor) && factor.type === type) {
        const locked = this.lockedFor(factor);
        if (locked > 0) {
          await this.record(tx, caller, AuditAction.AUTH_MFA_VERIFY, 'failure', 'warning', { type, reason: 'mfa_locked' });
          return { kind: 'locked', retryAfterSec: locked };
        }
        // Only the factor itself here: backup codes are for login and for replacing a factor.
        const ok = isSixDigitCode(code) && (await this.checkActiveFactor(tx, factor, code, caller));
        if (!ok) {
          await this.registerFailure(tx, factor);
          await this.record(tx, caller, AuditAction.AUTH_MFA_VERIFY, 'failure', 'warning', { type, reason: 'invalid_code' });
          return { kind: 'invalid' };
        }
        await this.clearFailures(tx, userId);
        await this.record(tx, caller, AuditAction.AUTH_MFA_VERIFY, 'success', 'info', { type, activated: false });
        return { kind: 'verified' };
      }
      await this.record(tx, caller, AuditAction.AUTH_MFA_VERIFY, 'failure', 'info', { type, reason: 'nothing_to_verify' });
      return { kind: 'nothing-to-verify' };
    });

    switch (outcome.kind) {
      case 'verified':
        return { verified: true, timestamp: this.clock.now().toISOString() };
      case 'invalid':
        throw AppException.unauthorized('The MFA code is not valid', MfaErrorCode.MFA_INVALID_CODE);
      case 'locked':
        throw lockedError(outcome.retryAfterSec);
      case 'nothing-to-verify':
        throw new AppException(MfaErrorCode.MFA_NOT_PENDING, `No ${type} MFA factor is pending or active: enable one first`, 400, [
          { field: 'type', message: `no ${type} factor to verify`, code: MfaErrorCode.MFA_NOT_PENDING },
        ]);
    }
  }

  private async verifyPending(tx: Transaction, caller: MfaCaller, factor: UserMfa, code: string): Promise<VerifyOutcome> {
    const userId = factor.userId;
    const type = factor.pendingType as MfaType;
    const now = this.clock.now();
    let acceptedStep: number | null = null;
    let ok = false;
    if (type === 'totp' && factor.pendingSecretCiphertext) {
      const secret = this.decrypt(factor.pendingSecretCiphertext, userId);
      acceptedStep = secret === null ? null : matchTotpStep(secret, code, now.getTime());
      ok = acceptedStep !== null;
    } else if (type === 'sms') {
      ok = await this.smsChallenges.verify(tx, userId, 'enroll', code);
    }
    if (!ok) {
      await this.record(tx, caller, AuditAction.AUTH_MFA_VERIFY, 'failure', 'warning', {
        type,
        reason: 'invalid_code',
        status: 'pending_verification',
      });
      return { kind: 'invalid' };
    }

    const replacedType = isActive(factor) ? factor.type : null;
    await this.factors.activate(
      tx,
      userId,
      {
        type,
        secretCiphertext: factor.pendingSecretCiphertext,
        phone: factor.pendingPhone,
        // The enrollment code's step is spent: it cannot be replayed at the next login.
        lastTotpStep: acceptedStep === null ? null : String(acceptedStep),
      },
      now,
    );
    await this.users.setMfaEnabled(tx, userId, true, now);
    await this.backupCodes.activatePending(tx, userId);
    // Codes sent for the previous factor or phone must not outlive it.
    await this.smsChallenges.discard(tx, userId);
    const endedSessions = await this.sessions.endAllForUser(tx, userId, 'mfa_changed', {
      exceptSessionId: caller.principal.sessionId,
      endedBy: userId,
    });
    await this.record(tx, caller, AuditAction.AUTH_MFA_VERIFY, 'success', replacedType ? 'warning' : 'info', {
      type,
      activated: true,
      replacedType,
      endedSessions,
    });
    return { kind: 'verified' };
  }

  /**
   * An administrator's reset (the user lost the factor, or it may be in other hands): removes the
   * active factor, any pending enrollment, the backup codes and outstanding SMS codes, inside the
   * caller's transaction, which must already hold the user's row lock (users first, as everywhere).
   * Returns what was removed, or null when the account had neither a factor nor an enrollment.
   */
  async reset(tx: Transaction, userId: string): Promise<{ type: MfaType | null; pendingType: MfaType | null } | null> {
    const factor = await this.factors.lock(tx, userId);
    const removed = factor ? { type: isActive(factor) ? factor.type : null, pendingType: factor.pendingType } : null;
    await this.smsChallenges.discard(tx, userId);
    await this.backupCodes.discardAll(tx, userId);
    await this.factors.delete(tx, userId);
    await this.users.setMfaEnabled(tx, userId, false, this.clock.now());
    return removed && (removed.type || removed.pendingType) ? removed : null;
  }

  /**
   * Checks a code against the ACTIVE factor and consumes it: a backup code (xxxx-xxxx), else a
   * TOTP code for a step later than the last accepted one, else the newest SMS login code.
   * `caller` is null on the login path (the login writes its own audit record).
   */
  private async checkActiveFactor(tx: Transaction, factor: UserMfa, code: string, caller: MfaCaller | null): Promise<boolean> {
    const userId = factor.userId;
    const candidate = code.trim();
    if (!isSixDigitCode(candidate)) {
      if (!normalizeBackupCode(candidate)) return false;
      const remaining = await this.backupCodes.consume(tx, userId, candidate);
      if (remaining === null) return false;
      await this.audit.record(
        tx,
        auditEvent(AuditAction.AUTH_MFA_BACKUP_CODE_USED, caller ?? SYSTEM_ACTOR, {
          userId,
          resource: `user:${userId}`,
          severity: remaining <= 2 ? 'warning' : 'info',
          details: { remaining },
          metadata: caller ? { sessionId: caller.principal.sessionId } : { during: 'login' },
        }),
      );
      return true;
    }
    if (factor.type === 'sms') return this.smsChallenges.verify(tx, userId, 'login', candidate);
    if (factor.type !== 'totp' || !factor.secretCiphertext) return false;

    const secret = this.decrypt(factor.secretCiphertext, userId);
    if (secret === null) return false;
    const step = matchTotpStep(secret, candidate, this.clock.nowMs());
    const lastStep = factor.lastTotpStep === null ? null : Number(factor.lastTotpStep);
    if (step === null || !isFreshTotpStep(step, lastStep)) return false;
    // Conditional update: of two concurrent uses of one code, only one moves the step forward.
    return this.factors.advanceTotpStep(tx, userId, step, this.clock.now());
  }

  private decrypt(ciphertext: string, userId: string): string | null {
    try {
      return this.crypto.decryptSeed(ciphertext, userId);
    } catch {
      // Only the fact, never the material: most likely ENCRYPTION_KEY changed since enrollment.
      this.logger.error(`MFA seed of user ${userId} cannot be decrypted (was ENCRYPTION_KEY changed?)`);
      return null;
    }
  }

  /**
   * Locks the user row, then the factor row: the same order as the login (users first), so the
   * two never deadlock. With `create`, makes an empty factor row first (concurrent first
   * enrollments then serialise on it instead of colliding on the primary key).
   */
  private async lockFactor(tx: Transaction, userId: string, create: boolean): Promise<UserMfa | null> {
    if (!(await this.users.lock(tx, userId))) throw AppException.unauthorized();
    if (create) await this.factors.insertEmpty(tx, userId, this.clock.now());
    return this.factors.lock(tx, userId);
  }

  /** Seconds left of an MFA lock on the authenticated routes, 0 when not locked. */
  private lockedFor(factor: UserMfa): number {
    const left = (factor.lockedUntil?.getTime() ?? 0) - this.clock.nowMs();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }

  /**
   * Wrong codes against the active factor on authenticated routes lock further tries with the
   * login's lockout settings, so a stolen access token cannot be used to brute-force the factor.
   */
  private async registerFailure(tx: Transaction, factor: UserMfa): Promise<void> {
    const { lockoutThreshold, lockoutWindowSec, lockoutDurationSec } = this.config.auth;
    const now = this.clock.nowMs();
    const windowStart = factor.failedWindowStart?.getTime();
    const inWindow = windowStart !== undefined && now - windowStart < lockoutWindowSec * 1000;
    const attempts = inWindow ? factor.failedAttempts + 1 : 1;
    const lock = attempts >= lockoutThreshold;
    await this.factors.setFailures(
      tx,
      factor.userId,
      {
        failedAttempts: lock ? 0 : attempts,
        failedWindowStart: lock ? null : new Date(inWindow ? windowStart : now),
        lockedUntil: lock ? new Date(now + lockoutDurationSec * 1000) : null,
      },
      new Date(now),
    );
  }

  private async clearFailures(tx: Transaction, userId: string): Promise<void> {
    await this.factors.clearFailures(tx, userId);
  }

  /** Sends after commit. A failed send drops its challenge (so a retry is not held back by the cooldown). */
  private async deliver(sms: PendingSms): Promise<void> {
    try {
      await this.smsSender.send(sms.phone, this.smsChallenges.messageFor(sms.code));
    } catch (error) {
      this.logger.warn(
        `SMS ${sms.purpose} code to ${maskPhone(sms.phone)} could not be sent: ${error instanceof Error ? error.message : 'unknown error'}`,
      );
      await this.unitOfWork.run((tx) => this.smsChallenges.discard(tx, sms.userId, sms.purpose));
      throw new AppException(MfaErrorCode.SMS_DELIVERY_FAILED, 'The SMS code could not be sent; try again shortly', 503);
    }
  }

  private record(
    tx: Transaction,
    caller: MfaCaller,
    action: AuditAction,
    result: AuditResult,
    severity: AuditSeverity,
    details: Record<string, unknown>,
  ): Promise<void> {
    return this.audit.record(
      tx,
      auditEvent(action, caller, {
        resource: `user:${caller.principal.userId}`,
        result,
        severity,
        details,
        metadata: { sessionId: caller.principal.sessionId },
      }),
    );
  }
}

function isActive(factor: UserMfa): boolean {
  return factor.verifiedAt !== null && factor.type !== null;
}

function lockedError(retryAfterSec: number): AppException {
  return new AppException(MfaErrorCode.MFA_LOCKED, 'Too many wrong MFA codes; try again later', 401, [], {
    'Retry-After': String(retryAfterSec),
  });
}
