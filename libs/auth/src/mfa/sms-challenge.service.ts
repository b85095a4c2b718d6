import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig, Clock, newId } from '@app/core';
import type { Transaction } from '@app/database';
import { SmsChallengePurpose, SmsChallengeRepository } from './sms-challenge.repository';
import { generateSmsCode, isSixDigitCode } from './mfa-codes';
import { MfaCrypto } from './mfa-crypto';

/** A login code is not re-sent while the last one is this fresh (stops SMS pumping by repeated logins). */
export const SMS_RESEND_COOLDOWN_MS = 30_000;

/** SMS codes: 6 digits, keyed-hashed, expiring after SMS_CODE_TTL, single use, SMS_MAX_ATTEMPTS tries. */
@Injectable()
export class SmsChallengeService {
  constructor(
    private readonly repository: SmsChallengeRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly crypto: MfaCrypto,
    private readonly clock: Clock,
  ) {}

  /**
   * Creates a challenge and returns its code for the caller to send after commit. Only the newest
   * challenge of a purpose counts: earlier ones are dropped. With `cooldown`, returns null instead
   * while a still-usable challenge is younger than SMS_RESEND_COOLDOWN_MS.
   */
  async issue(tx: Transaction, userId: string, purpose: SmsChallengePurpose, cooldown = false): Promise<string | null> {
    const now = this.clock.now();
    if (cooldown) {
      const recent = await this.repository.findRecentUsable(tx, userId, purpose, new Date(now.getTime() - SMS_RESEND_COOLDOWN_MS), now);
      if (recent && recent.attempts < this.config.mfa.smsMaxAttempts) return null;
    }
    await this.repository.delete(tx, userId, purpose);
    const id = newId('smc');
    const code = generateSmsCode();
    await this.repository.insert(tx, {
      id,
      userId,
      purpose,
      codeHash: this.crypto.hashCode(`sms:${id}`, code),
      expiresAt: new Date(now.getTime() + this.config.mfa.smsCodeTtlSec * 1000),
      attempts: 0,
      usedAt: null,
      createdAt: now,
    });
    return code;
  }

  /**
   * Checks `code` against the newest live challenge and uses it up on success. Every try (right
   * or wrong) first reserves one of the challenge's attempts atomically, so concurrent guesses
   * cannot exceed SMS_MAX_ATTEMPTS.
   */
  async verify(tx: Transaction, userId: string, purpose: SmsChallengePurpose, code: string): Promise<boolean> {
    const now = this.clock.now();
    const challenge = await this.repository.findNewestUnused(tx, userId, purpose);
    if (!challenge || challenge.expiresAt.getTime() <= now.getTime()) return false;
    if (!(await this.repository.reserveAttempt(tx, challenge.id, this.config.mfa.smsMaxAttempts))) return false;
    const candidate = isSixDigitCode(code) ? code : '';
    if (!MfaCrypto.sameHash(challenge.codeHash, this.crypto.hashCode(`sms:${challenge.id}`, candidate))) return false;
    return this.repository.markUsed(tx, challenge.id, now);
  }

  /** Drops outstanding challenges (all purposes unless one is given). */
  async discard(tx: Transaction, userId: string, purpose?: SmsChallengePurpose): Promise<void> {
    await this.repository.delete(tx, userId, purpose);
  }

  /** The text sent; the code leads so phones can offer it for autofill. */
  messageFor(code: string): string {
    const minutes = Math.max(1, Math.round(this.config.mfa.smsCodeTtlSec / 60));
    return `${code} is your ${this.config.mfa.issuer} verification code. It expires in ${minutes} min. Never share it.`;
  }
}
