import { createHash } from 'node:crypto';
import { canonicalJson } from '@app/audit';

/** SHA-256 of the canonical JSON (keys sorted): equal values always give equal fingerprints. */
export function fingerprint(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}
