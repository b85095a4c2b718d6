import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Every agent API key starts with this, so the guard tells keys from JWTs without trying both. */
export const API_KEY_PREFIX = 'smcp_';

/** `smcp_` + 256 random bits in base64url (43 characters). */
const API_KEY_PATTERN = /^smcp_[A-Za-z0-9_-]{43}$/;

/** A new key: shown to its owner once, stored only as its hash. */
export function generateApiKey(): string {
  return `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
}

export function looksLikeApiKey(credential: string): boolean {
  return credential.startsWith(API_KEY_PREFIX);
}

export function isWellFormedApiKey(credential: string): boolean {
  return API_KEY_PATTERN.test(credential);
}

/**
 * SHA-256 is enough for a 256-bit random secret (no dictionary to attack, unlike passwords), and
 * it is what lets a key be found by its hash in one indexed read.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** What listings show to recognise a key: the prefix and the first characters of the random part. */
export function displayPrefix(key: string): string {
  return key.slice(0, API_KEY_PREFIX.length + 6);
}

export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}
