import { Inject, Injectable } from '@nestjs/common';
import { EntityManager, IsNull, MoreThan } from 'typeorm';
import { APP_CONFIG, AppConfig, Clock, newId } from '@app/core';
import { MfaSmsChallengeEntity, SmsChallengePurpose } from './entities/mfa-sms-challenge.entity';
import { generateSmsCode, isSixDigitCode } from './mfa-codes';
import { MfaCrypto } from './mfa-crypto';

/** A login code is not re-sent while the last one is this fresh (stops SMS pumping by repeated logins). */
export const SMS_RESEND_COOLDOWN_MS = 30_000;

/** SMS codes: 6 digits, keyed-hashed, expiring after SMS_CODE_TTL, single use, SMS_MAX_ATTEMPTS tries. */
@Injectable()
export class SmsChallengeService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly crypto: MfaCrypto,
    private readonly clock: Clock,
  ) {}

  /**
   * Creates a challenge and returns its code for the caller to send after commit. Only the newest
   * challenge of a purpose counts: earlier ones are dropped. With `cooldown`, returns null instead
   * while a still-usable challenge is younger than SMS_RESEND_COOLDOWN_MS.
   */
  async issue(manager: EntityManager, userId: string, purpose: SmsChallengePurpose, cooldown = false): Promise<string | null> {
    const now = this.clock.now();
    if (cooldown) {
      const recent = await manager.findOne(MfaSmsChallengeEntity, {
        where: {
          userId,
          purpose,
          usedAt: IsNull(),
          createdAt: MoreThan(new Date(now.getTime() - SMS_RESEND_COOLDOWN_MS)),
          expiresAt: MoreThan(now),
        },
      });
      if (recent && recent.attempts < this.config.mfa.smsMaxAttempts) return null;
    }
    await manager.delete(MfaSmsChallengeEntity, { userId, purpose });
    const id = newId('smc');
    const code = generateSmsCode();
    await manager.insert(MfaSmsChallengeEntity, {
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
  async verify(manager: EntityManager, userId: string, purpose: SmsChallengePurpose, code: string): Promise<boolean> {
    const now = this.clock.now();
    const challenge = await manager.findOne(MfaSmsChallengeEntity, {
      where: { userId, purpose, usedAt: IsNull() },
      order: { createdAt: 'DESC' },
    });
    if (!challenge || challenge.expiresAt.getTime() <= now.getTime()) return false;
    const reserved = await manager
      .createQueryBuilder()
      .update(MfaSmsChallengeEntity)
      .set({ attempts: () => 'attempts + 1' })
      .where('id = :id AND used_at IS NULL AND attempts < :max', { id: challenge.id, max: this.config.mfa.smsMaxAttempts })
      .execute();
    if (reserved.affected !== 1) return false;
    const candidate = isSixDigitCode(code) ? code : '';
    if (!MfaCrypto.sameHash(challenge.codeHash, this.crypto.hashCode(`sms:${challenge.id}`, candidate))) return false;
    const used = await manager
      .createQueryBuilder()
      .update(MfaSmsChallengeEntity)
      .set({ usedAt: now })
      .where('id = :id AND used_at IS NULL', { id: challenge.id })
      .execute();
    return used.affected === 1;
  }

  /** Drops outstanding challenges (all purposes unless one is given). */
  async discard(manager: EntityManager, userId: string, purpose?: SmsChallengePurpose): Promise<void> {
    await manager.delete(MfaSmsChallengeEntity, purpose ? { userId, purpose } : { userId });
  }

  /** The text sent; the code leads so phones can offer it for autofill. */
  messageFor(code: string): string {
    const minutes = Math.max(1, Math.round(this.config.mfa.smsCodeTtlSec / 60));
    return `${code} is your ${this.config.mfa.issuer} verification code. It expires in ${minutes} min. Never share it.`;
  }
}
