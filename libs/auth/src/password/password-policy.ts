import { COMMON_PASSWORDS } from '../data/common-passwords';

/** The contract's pattern: 12+ characters with lower, upper, digit and one of @$!%*?&, nothing else. */
export const PASSWORD_PATTERN = /^(?=.*[a-z])(?=.*[A-Z])(?=.*\d)(?=.*[@$!%*?&])[A-Za-z\d@$!%*?&]{12,}$/;
/** bcrypt ignores everything after 72 bytes, so a longer password would be silently truncated. */
export const PASSWORD_MAX_BYTES = 72;

export const PASSWORD_RULES_MESSAGE =
  'password must be at least 12 characters long and contain a lower-case letter, an upper-case letter, a digit and one of @$!%*?& (and no other characters)';

const LEET: Record<string, string> = { '@': 'a', '4': 'a', '8': 'b', '3': 'e', '1': 'i', '!': 'i', '0': 'o', $: 's', '5': 's', '7': 't' };
/** Digits and symbols people add before or after a word to satisfy composition rules. */
const DECORATION = /^[\d@$!%*?&]+|[\d@$!%*?&]+$/g;

/**
 * The forms of a password compared with the common list: as typed (lower-cased), without the
 * digits and symbols around its core ("Summer2024!!" → "summer"), and with leetspeak undone
 * ("P@ssw0rd1234" → "password").
 */
export function commonPasswordForms(password: string): string[] {
  const lower = password.toLowerCase();
  const core = lower.replace(DECORATION, '');
  const deLeeted = lower.replace(/[@4831!0$57]/g, (c) => LEET[c]);
  const deLeetedCore = core.replace(/[@4831!0$57]/g, (c) => LEET[c]).replace(DECORATION, '');
  return [...new Set([lower, core, deLeeted, deLeetedCore].filter((form) => form.length > 0))];
}

export function isCommonPassword(password: string): boolean {
  return commonPasswordForms(password).some((form) => COMMON_PASSWORDS.has(form));
}

/** Every rule the password breaks, as messages for the Error body's details (empty when acceptable). */
export function passwordProblems(password: unknown): string[] {
  if (typeof password !== 'string') return ['password must be a string'];
  const problems: string[] = [];
  if (Buffer.byteLength(password, 'utf8') > PASSWORD_MAX_BYTES) {
    problems.push(`password must be at most ${PASSWORD_MAX_BYTES} bytes long`);
  }
  if (!PASSWORD_PATTERN.test(password)) problems.push(PASSWORD_RULES_MESSAGE);
  else if (isCommonPassword(password)) problems.push('password is too common; choose one that is harder to guess');
  return problems;
}
