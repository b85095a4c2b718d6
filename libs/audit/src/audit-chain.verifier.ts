import { timingSafeEqual } from 'node:crypto';
import type { AuditChainVerification } from './audit-entry';
import { computeAuditHash, GENESIS_HASH } from './audit-hash';
import { AuditLogRow, auditRowContent } from './audit-log.repository';

/** Reads the rows after `afterSeq`, oldest first, at most `limit` of them. */
export type AuditRowReader = (afterSeq: string, limit: number) => Promise<AuditLogRow[]>;

export interface AuditChainWalkOptions {
  /** Recomputes a row's MAC from its hash; without it (an auditor holding no key) MACs are not checked. */
  mac?: (hash: string) => string;
  /** Stop after this row (a checkpoint's seq). */
  untilSeq?: number;
  batchSize?: number;
}

/**
 * Walks the chain oldest first: each row's SHA-256 hash over its content and the previous hash,
 * its link, and (given the key) its keyed MAC. Rows without a MAC are the legacy prefix written
 * before the keyed chain: one after a keyed row means the chain was rewritten by someone without
 * the key (a downgrade). `checked` counts the rows examined, including the first invalid one.
 */
export async function walkAuditChain(read: AuditRowReader, options: AuditChainWalkOptions = {}): Promise<AuditChainVerification> {
  const batchSize = options.batchSize ?? 500;
  let expectedPrev = GENESIS_HASH;
  let lastSeq = '0';
  let checked = 0;
  let unkeyed = 0;
  let keyedSeen = false;
  let head: AuditChainVerification['head'] = null;
  const done = (firstInvalid: AuditChainVerification['firstInvalid']): AuditChainVerification => ({
    valid: firstInvalid === null,
    checked,
    firstInvalid,
    unkeyedRecords: unkeyed,
    head,
  });
  for (;;) {
    const rows = await read(lastSeq, batchSize);
    for (const row of rows) {
      if (options.untilSeq !== undefined && Number(row.seq) > options.untilSeq) return done(null);
      checked += 1;
      const invalid = (reason: string) => done({ id: row.id, seq: Number(row.seq), reason });
      if (row.prev_hash !== expectedPrev) {
        return invalid(
          checked === 1 && expectedPrev === GENESIS_HASH
            ? 'prev_hash is not the genesis hash: earlier rows were removed or this row was altered'
            : 'prev_hash does not match the previous row: a row before it was removed or altered',
        );
      }
      if (computeAuditHash(row.prev_hash, auditRowContent(row)) !== row.hash) {
        return invalid('hash does not match the row content: the row was altered');
      }
      if (row.mac === null) {
        if (keyedSeen) return invalid('the row has no MAC after keyed rows: the chain was rewritten without the audit key');
        unkeyed += 1;
      } else {
        keyedSeen = true;
        if (options.mac && !sameHex(options.mac(row.hash), row.mac)) {
          return invalid('MAC does not match: the chain was rewritten without the audit key (or under another AUDIT_HMAC_KEY)');
        }
      }
      expectedPrev = row.hash;
      lastSeq = row.seq;
      head = { seq: Number(row.seq), id: row.id, hash: row.hash };
    }
    if (rows.length < batchSize) return done(null);
  }
}

function sameHex(expected: string, actual: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(actual, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
