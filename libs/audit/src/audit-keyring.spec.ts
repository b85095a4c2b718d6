import { chmodSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@app/core';
import { AuditCheckpoint, checkpointSignatureValid, checkpointSigningPayload } from './audit-checkpoint';
import { AUDIT_KEY_FILE, auditKeyIdOf, AuditKeyring } from './audit-keyring';

describe('AuditKeyring', () => {
  const keyring = (env: Record<string, string>) => new AuditKeyring(loadConfig(env));

  it('outside production keeps one generated key in DATA_DIR, readable by its owner only, across restarts', () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'smcp-keyring-')), 'data');
    const first = keyring({ DATA_DIR: dataDir });
    expect(statSync(join(dataDir, AUDIT_KEY_FILE)).mode & 0o777).toBe(0o600);
    const again = keyring({ DATA_DIR: dataDir });
    expect(again.macKey.equals(first.macKey)).toBe(true);
    expect(again.publicKeyPem).toBe(first.publicKeyPem);
    expect(keyring({ DATA_DIR: `${dataDir}-other` }).macKey.equals(first.macKey)).toBe(false);
  });

  it('outside production derives it from a configured JWT_SECRET, so replicas with their own DATA_DIR share it', () => {
    const jwt = { JWT_SECRET: 'Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcVbNm' };
    const a = keyring({ ...jwt, DATA_DIR: mkdtempSync(join(tmpdir(), 'smcp-keyring-')) });
    const b = keyring({ ...jwt, DATA_DIR: mkdtempSync(join(tmpdir(), 'smcp-keyring-')) });
    expect(a.macKey.equals(b.macKey)).toBe(true);
    expect(keyring({ JWT_SECRET: `${jwt.JWT_SECRET}x`, DATA_DIR: tmpdir() }).macKey.equals(a.macKey)).toBe(false);
  });

  it('refuses a key file others can read', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'smcp-keyring-'));
    keyring({ DATA_DIR: dataDir });
    chmodSync(join(dataDir, AUDIT_KEY_FILE), 0o644);
    expect(() => keyring({ DATA_DIR: dataDir })).toThrow(/readable by its owner only/);
  });

  it('derives the same keys from AUDIT_HMAC_KEY wherever it runs, and signs checkpoints the public key checks', () => {
    const env = { AUDIT_HMAC_KEY: 'q8Vd2Lk9Zp4Wn7Rt1Yx6Bc3Hf5Jm0Gs8Ua2Ke' };
    const a = keyring({ ...env, DATA_DIR: mkdtempSync(join(tmpdir(), 'smcp-keyring-')) });
    const b = keyring({ ...env, DATA_DIR: mkdtempSync(join(tmpdir(), 'smcp-keyring-')) });
    expect(a.macKey.equals(b.macKey)).toBe(true);
    expect(a.keyId).toBe(auditKeyIdOf(b.publicKeyPem));
    const unsigned = {
      format: 'smcp-audit-checkpoint/1' as const,
      seq: 7,
      id: 'aud_x',
      hash: 'a'.repeat(64),
      createdAt: '2030-01-01T00:00:00.000Z',
      keyId: a.keyId,
    };
    const checkpoint: AuditCheckpoint = { ...unsigned, signature: a.sign(checkpointSigningPayload(unsigned)) };
    expect(checkpointSignatureValid(checkpoint, b.publicKeyPem)).toBe(true);
    expect(checkpointSignatureValid({ ...checkpoint, hash: 'b'.repeat(64) }, b.publicKeyPem)).toBe(false);
    const stranger = keyring({ AUDIT_HMAC_KEY: 'Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LzXcVbNm', DATA_DIR: tmpdir() });
    expect(checkpointSignatureValid(checkpoint, stranger.publicKeyPem)).toBe(false);
  });
});
