import { pooledRandom } from './request-context';

/**
 * Opaque, URL-safe, prefixed identifiers (`usr_…`, `ses_…`) as the contract's examples show: 96
 * random bits from the CSPRNG, drawn from a pool (a randomBytes call each was ~2% of an MCP tool
 * call's CPU, which mints two). Identifiers, never secrets: secrets use randomBytes of their own.
 */
export function newId(prefix: string): string {
  return `${prefix}_${pooledRandom(12).toString('base64url')}`;
}
