import { randomBytes } from 'node:crypto';
import * as speakeasy from 'speakeasy';

/** RFC 6238 defaults every authenticator app understands. */
export const TOTP_STEP_SECONDS = 30;
/** One step of clock drift either side. */
export const TOTP_WINDOW = 1;
const TOTP_CODE = /^\d{6}$/;
const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** The TOTP time step (counter) that contains the instant `nowMs`. */
export function totpStepAt(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_STEP_SECONDS);
}

/**
 * A fresh 160-bit seed (RFC 4226's recommended length) in unpadded base32. Generated from
 * raw random bytes rather than speakeasy's printable-ASCII generator, which wastes entropy.
 */
export function generateTotpSecret(): string {
  const bytes = randomBytes(20);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** The otpauth:// URI authenticator apps scan. */
export function totpUri(secretBase32: string, issuer: string, label: string): string {
  return speakeasy.otpauthURL({
    secret: secretBase32,
    encoding: 'base32',
    label: `${issuer}:${label}`,
    issuer,
    algorithm: 'sha1',
    digits: 6,
    period: TOTP_STEP_SECONDS,
  });
}

/**
 * The time step whose code `code` is, within one step of drift around `nowMs`, or null.
 * This only says the code is genuine; replay is decided by {@link isFreshTotpStep}.
 */
export function matchTotpStep(secretBase32: string, code: string, nowMs: number): number | null {
  if (!TOTP_CODE.test(code)) return null;
  const result = speakeasy.totp.verifyDelta({
    secret: secretBase32,
    encoding: 'base32',
    token: code,
    window: TOTP_WINDOW,
    step: TOTP_STEP_SECONDS,
    time: Math.floor(nowMs / 1000),
  });
  return result ? totpStepAt(nowMs) + result.delta : null;
}

/** speakeasy does not stop replay: a step is accepted only once, and never one older than the last. */
export function isFreshTotpStep(step: number, lastAcceptedStep: number | null): boolean {
  return lastAcceptedStep === null || step > lastAcceptedStep;
}
