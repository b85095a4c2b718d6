import { randomInt } from 'node:crypto';

export const BACKUP_CODE_COUNT = 10;
/** No 0/o, 1/l/i: backup codes are read off paper and typed by hand. 31^8 ≈ 2^39.6 per code. */
const BACKUP_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const BACKUP_CODE = /^[a-z0-9]{4}-?[a-z0-9]{4}$/;
const E164 = /^\+[1-9]\d{1,14}$/;

export function generateBackupCode(): string {
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === 4) out += '-';
    out += BACKUP_ALPHABET[randomInt(BACKUP_ALPHABET.length)];
  }
  return out;
}

export function generateBackupCodes(count = BACKUP_CODE_COUNT): string[] {
  const codes = new Set<string>();
  while (codes.size < count) codes.add(generateBackupCode());
  return [...codes];
}

/** Canonical form of what a user typed as a backup code (`ABCD-EFGH`, `abcdefgh` → `abcd-efgh`), or null. */
export function normalizeBackupCode(input: string): string | null {
  const code = input.trim().toLowerCase();
  if (!BACKUP_CODE.test(code)) return null;
  return code.includes('-') ? code : `${code.slice(0, 4)}-${code.slice(4)}`;
}

export function isSixDigitCode(code: string): boolean {
  return /^\d{6}$/.test(code);
}

/** A uniformly random 6-digit SMS code, leading zeros kept. */
export function generateSmsCode(): string {
  return randomInt(0, 1_000_000).toString().padStart(6, '0');
}

export const E164_PATTERN = E164;

export function isE164(phone: string): boolean {
  return E164.test(phone);
}

/** `+14155550123` → `+1*******23`: enough for a person to recognise, useless to a reader of logs. */
export function maskPhone(phone: string): string {
  if (phone.length <= 5) return '*'.repeat(phone.length);
  return `${phone.slice(0, 2)}${'*'.repeat(phone.length - 4)}${phone.slice(-2)}`;
}
