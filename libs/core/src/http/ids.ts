import { randomBytes } from 'node:crypto';

/** Opaque, URL-safe, prefixed identifiers (`usr_…`, `ses_…`) as the contract's examples show. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}
