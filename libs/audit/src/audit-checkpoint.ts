import { createPublicKey, verify } from 'node:crypto';
import { AuditRowReader, walkAuditChain } from './audit-chain.verifier';
import type { AuditChainVerification } from './audit-entry';
import { canonicalJson } from './audit-hash';
import { auditKeyIdOf } from './audit-keyring';

export const AUDIT_CHECKPOINT_FORMAT = 'smcp-audit-checkpoint/1' as const;

/**
 * A signed statement "the verified chain had this row, with this hash, at its head at this time".
 * Kept outside the database, it shows any later rewrite of the rows up to `seq` (the head hash
 * covers all of them), and their removal, to anyone holding the public key.
 */
export interface AuditCheckpoint {
  format: typeof AUDIT_CHECKPOINT_FORMAT;
  seq: number;
  id: string;
  hash: string;
  createdAt: string;
  keyId: string;
  /** Ed25519 over checkpointSigningPayload, base64. */
  signature: string;
}

/** The exact bytes a checkpoint's signature covers: every other field, canonically serialised. */
export function checkpointSigningPayload(checkpoint: Omit<AuditCheckpoint, 'signature'>): string {
  const { format, seq, id, hash, createdAt, keyId } = checkpoint;
  return canonicalJson({ format, seq, id, hash, createdAt, keyId });
}

/** True when the signature is the given public key's over the checkpoint's fields. */
export function checkpointSignatureValid(checkpoint: AuditCheckpoint, publicKeyPem: string): boolean {
  try {
    const key = createPublicKey(publicKeyPem);
    return verify(null, Buffer.from(checkpointSigningPayload(checkpoint), 'utf8'), key, Buffer.from(checkpoint.signature, 'base64'));
  } catch {
    return false;
  }
}

/** Reads a checkpoint file's JSON; throws with what is wrong when it is not one. */
export function parseCheckpoint(text: string): AuditCheckpoint {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new Error('the checkpoint is not JSON');
  }
  const ok =
    value !== null &&
    typeof value === 'object' &&
    value.format === AUDIT_CHECKPOINT_FORMAT &&
    Number.isSafeInteger(value.seq) &&
    (value.seq as number) > 0 &&
    typeof value.id === 'string' &&
    typeof value.hash === 'string' &&
    /^[0-9a-f]{64}$/.test(value.hash) &&
    typeof value.createdAt === 'string' &&
    typeof value.keyId === 'string' &&
    typeof value.signature === 'string';
  if (!ok) throw new Error(`the checkpoint is not a ${AUDIT_CHECKPOINT_FORMAT} document`);
  return value as unknown as AuditCheckpoint;
}

export interface CheckpointCheck {
  ok: boolean;
  /** Why not, when not ok. */
  reason: string | null;
  verification: AuditChainVerification | null;
}

/**
 * Checks a checkpoint with the public key only: its key id and signature, then the chain up to
 * its row (SHA-256 hashes and links, no MAC key needed), whose head must be the very row and
 * hash the checkpoint signed. A rewrite of any row up to it changes that hash; removing rows
 * removes the row.
 */
export async function checkCheckpoint(read: AuditRowReader, checkpoint: AuditCheckpoint, publicKeyPem: string): Promise<CheckpointCheck> {
  const fail = (reason: string, verification: AuditChainVerification | null = null): CheckpointCheck => ({
    ok: false,
    reason,
    verification,
  });
  let keyId: string;
  try {
    keyId = auditKeyIdOf(publicKeyPem);
  } catch {
    return fail('the public key is not a PEM public key');
  }
  if (keyId !== checkpoint.keyId) return fail(`the checkpoint was signed by key ${checkpoint.keyId}, not by this public key (${keyId})`);
  if (!checkpointSignatureValid(checkpoint, publicKeyPem))
    return fail('the signature does not match: the checkpoint was altered or forged');
  const verification = await walkAuditChain(read, { untilSeq: checkpoint.seq });
  if (!verification.valid) {
    const { id, seq, reason } = verification.firstInvalid!;
    return fail(`the chain breaks before the checkpoint, at record ${id} (seq ${seq}): ${reason}`, verification);
  }
  const head = verification.head;
  if (!head || head.seq !== checkpoint.seq || head.id !== checkpoint.id || head.hash !== checkpoint.hash) {
    return fail(
      `the chain's record at seq ${checkpoint.seq} is not the one the checkpoint signed: records up to it were rewritten or removed`,
      verification,
    );
  }
  return { ok: true, reason: null, verification };
}
