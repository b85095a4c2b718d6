import { CredentialCipher } from './credential-cipher';

const KEY_A = 'a'.repeat(32) + '-first-encryption-key';
const KEY_B = 'b'.repeat(32) + '-second-encryption-key';
const cipherOf = (encryptionKey: string, previousEncryptionKeys: string[] = []) =>
  new CredentialCipher({ secrets: { encryptionKey, previousEncryptionKeys } } as never);

describe('CredentialCipher', () => {
  it('opens what it sealed, for the same user and upstream only', () => {
    const cipher = cipherOf(KEY_A);
    const sealed = cipher.seal('ghp_secret-token', 'usr_1', 'github');
    expect(sealed).not.toContain('ghp_secret-token');
    expect(sealed.split('.')[0]).toBe('uc1');
    expect(cipher.open(sealed, 'usr_1', 'github')).toEqual({ plaintext: 'ghp_secret-token', stale: false });
    expect(() => cipher.open(sealed, 'usr_2', 'github')).toThrow();
    expect(() => cipher.open(sealed, 'usr_1', 'jira')).toThrow();
  });

  it('seals the same secret differently every time (random IV)', () => {
    const cipher = cipherOf(KEY_A);
    expect(cipher.seal('same', 'usr_1', 'github')).not.toBe(cipher.seal('same', 'usr_1', 'github'));
  });

  it('refuses an altered ciphertext', () => {
    const cipher = cipherOf(KEY_A);
    const parts = cipher.seal('token', 'usr_1', 'github').split('.');
    const body = Buffer.from(parts[4], 'base64url');
    body[0] ^= 1;
    parts[4] = body.toString('base64url');
    expect(() => cipher.open(parts.join('.'), 'usr_1', 'github')).toThrow();
  });

  it('rotation: a value sealed under a key now in ENCRYPTION_KEY_PREVIOUS opens, marked stale; an unknown key does not', () => {
    const sealedUnderA = cipherOf(KEY_A).seal('token', 'usr_1', 'github');
    expect(cipherOf(KEY_B, [KEY_A]).open(sealedUnderA, 'usr_1', 'github')).toEqual({ plaintext: 'token', stale: true });
    expect(() => cipherOf(KEY_B).open(sealedUnderA, 'usr_1', 'github')).toThrow('no longer configured');
    const resealed = cipherOf(KEY_B, [KEY_A]).seal('token', 'usr_1', 'github');
    expect(cipherOf(KEY_B).open(resealed, 'usr_1', 'github').stale).toBe(false);
  });
});
