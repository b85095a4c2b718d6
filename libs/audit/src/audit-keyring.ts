import { Inject, Injectable } from '@nestjs/common';
import { createHash, createHmac, createPrivateKey, createPublicKey, KeyObject, randomBytes, sign } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { APP_CONFIG, AppConfig } from '@app/core';

/** Where a development server keeps its generated audit key (production must set AUDIT_HMAC_KEY). */
export const AUDIT_KEY_FILE = 'audit-hmac.key';

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows it. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * The audit chain's secrets, derived from one key the database never sees: the MAC key of every
 * row, and an Ed25519 key pair that signs checkpoints of the chain head. The public half is all
 * an auditor needs to check an exported checkpoint offline.
 */
@Injectable()
export class AuditKeyring {
  readonly macKey: Buffer;
  private readonly signingKey: KeyObject;
  /** SubjectPublicKeyInfo PEM of the checkpoint signing key. */
  readonly publicKeyPem: string;
  /** Names the signing key in checkpoints: the first 16 hex digits of SHA-256 over its public key. */
  readonly keyId: string;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    const root = Buffer.from(config.secrets.auditHmacKey ?? developmentKey(config), 'utf8');
    this.macKey = derive(root, 'smcp-audit-mac-key');
    const seed = derive(root, 'smcp-audit-checkpoint-ed25519');
    this.signingKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    this.publicKeyPem = createPublicKey(this.signingKey).export({ format: 'pem', type: 'spki' }).toString();
    this.keyId = auditKeyIdOf(this.publicKeyPem);
  }

  /** Ed25519 signature (base64) over the given bytes. */
  sign(payload: string): string {
    return sign(null, Buffer.from(payload, 'utf8'), this.signingKey).toString('base64');
  }
}

/** The key id of a checkpoint public key (PEM): what a checkpoint's `keyId` must say. */
export function auditKeyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ format: 'der', type: 'spki' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

function derive(root: Buffer, purpose: string): Buffer {
  return createHmac('sha256', root).update(purpose).digest();
}

/**
 * Outside production without AUDIT_HMAC_KEY: derived from a configured JWT_SECRET (replicas
 * sharing a database share it too, so each verifies the others' rows), else generated once and
 * kept in DATA_DIR (mode 0600), so the chain still verifies after a restart. A key file others
 * can read is refused: whoever reads it can forge MACs.
 */
function developmentKey(config: AppConfig): string {
  if (!config.secrets.generated.includes('JWT_SECRET')) {
    return createHmac('sha256', config.secrets.jwtSecret).update('smcp-audit-development-key').digest('base64url');
  }
  const path = join(config.dataDir, AUDIT_KEY_FILE);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  try {
    writeFileSync(path, `${randomBytes(48).toString('base64url')}\n`, { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  if ((statSync(path).mode & 0o077) !== 0) throw new Error(`${path} must be readable by its owner only (chmod 600)`);
  const key = readFileSync(path, 'utf8').trim();
  if (key.length < 32) throw new Error(`${path} does not hold an audit key`);
  return key;
}
