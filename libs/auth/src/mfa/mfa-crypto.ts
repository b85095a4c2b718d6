import { Inject, Injectable } from '@nestjs/common';
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { APP_CONFIG, AppConfig } from '@app/core';

const FORMAT = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

function deriveKey(master: string, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(master, 'utf8'), Buffer.alloc(0), info, 32));
}

/**
 * Keys derived from ENCRYPTION_KEY, one per purpose (HKDF info), so a seed key never doubles
 * as a hashing key. Changing ENCRYPTION_KEY invalidates enrolled MFA factors and codes.
 */
@Injectable()
export class MfaCrypto {
  private readonly seedKey: Buffer;
  private readonly codeKey: Buffer;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.seedKey = deriveKey(config.secrets.encryptionKey, 'mfa-seed');
    this.codeKey = deriveKey(config.secrets.encryptionKey, 'mfa-code-hash');
  }

  /** AES-256-GCM; the user id is bound as associated data so a ciphertext cannot be moved to another user. */
  encryptSeed(seed: string, userId: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.seedKey, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(userId, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(seed, 'utf8'), cipher.final()]);
    return [FORMAT, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ciphertext.toString('base64url')].join('.');
  }

  /** Throws when the ciphertext was altered, belongs to another user or was made with another key. */
  decryptSeed(stored: string, userId: string): string {
    const [format, iv, tag, ciphertext] = stored.split('.');
    if (format !== FORMAT || !iv || !tag || ciphertext === undefined) throw new Error('Unrecognised MFA seed format');
    const decipher = createDecipheriv('aes-256-gcm', this.seedKey, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(userId, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
  }

  /**
   * Keyed hash of a one-time code, scoped (e.g. `backup:<userId>` or `sms:<challengeId>`) so equal
   * codes never share a hash. Keyed because a 6-digit SMS code hashed without a key falls to a
   * million guesses.
   */
  hashCode(scope: string, code: string): string {
    return createHmac('sha256', this.codeKey).update(`${scope}\n${code}`).digest('hex');
  }

  /** Constant-time comparison of two hex hashes. */
  static sameHash(a: string, b: string): boolean {
    const left = Buffer.from(a, 'hex');
    const right = Buffer.from(b, 'hex');
    return left.length === right.length && left.length > 0 && timingSafeEqual(left, right);
  }
}
