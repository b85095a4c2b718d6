import { loadConfig } from '@app/core';
import { MfaCrypto } from './mfa-crypto';

describe('MfaCrypto', () => {
  const configWith = (key: string) => loadConfig({ NODE_ENV: 'test', ENCRYPTION_KEY: key });
  const crypto = new MfaCrypto(configWith('k'.repeat(40)));

  describe('seed encryption', () => {
    it('round-trips a seed', () => {
      const sealed = crypto.encryptSeed('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 'usr_1');
      expect(crypto.decryptSeed(sealed, 'usr_1')).toBe('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');
    });

    it('never stores the seed in the clear and uses a fresh IV each time', () => {
      const a = crypto.encryptSeed('JBSWY3DPEHPK3PXP', 'usr_1');
      const b = crypto.encryptSeed('JBSWY3DPEHPK3PXP', 'usr_1');
      expect(a).not.toContain('JBSWY3DPEHPK3PXP');
      expect(a).not.toBe(b);
      expect(a.startsWith('v1.')).toBe(true);
    });

    it('refuses a ciphertext moved to another user', () => {
      const sealed = crypto.encryptSeed('JBSWY3DPEHPK3PXP', 'usr_1');
      expect(() => crypto.decryptSeed(sealed, 'usr_2')).toThrow();
    });

    it('refuses a tampered ciphertext or tag', () => {
      const [v, iv, tag, ct] = crypto.encryptSeed('JBSWY3DPEHPK3PXP', 'usr_1').split('.');
      const flip = (s: string) => {
        const bytes = Buffer.from(s, 'base64url');
        bytes[0] ^= 1;
        return bytes.toString('base64url');
      };
      expect(() => crypto.decryptSeed([v, iv, tag, flip(ct)].join('.'), 'usr_1')).toThrow();
      expect(() => crypto.decryptSeed([v, iv, flip(tag), ct].join('.'), 'usr_1')).toThrow();
      expect(() => crypto.decryptSeed('garbage', 'usr_1')).toThrow();
    });

    it('refuses a ciphertext made under another ENCRYPTION_KEY', () => {
      const sealed = new MfaCrypto(configWith('o'.repeat(40))).encryptSeed('JBSWY3DPEHPK3PXP', 'usr_1');
      expect(() => crypto.decryptSeed(sealed, 'usr_1')).toThrow();
    });
  });

  describe('code hashing', () => {
    it('is deterministic, hex SHA-256 sized, and never the code itself', () => {
      const hash = crypto.hashCode('sms:smc_1', '123456');
      expect(hash).toMatch(/^[0-9a-f]{64}$/);
      expect(crypto.hashCode('sms:smc_1', '123456')).toBe(hash);
      expect(hash).not.toContain('123456');
    });

    it('separates scopes, codes and keys', () => {
      const hash = crypto.hashCode('sms:smc_1', '123456');
      expect(crypto.hashCode('sms:smc_2', '123456')).not.toBe(hash);
      expect(crypto.hashCode('sms:smc_1', '123457')).not.toBe(hash);
      expect(new MfaCrypto(configWith('o'.repeat(40))).hashCode('sms:smc_1', '123456')).not.toBe(hash);
    });

    it('compares hashes in constant time and never matches empty or different lengths', () => {
      const hash = crypto.hashCode('backup:usr_1', 'abcd-efgh');
      expect(MfaCrypto.sameHash(hash, hash)).toBe(true);
      expect(MfaCrypto.sameHash(hash, crypto.hashCode('backup:usr_1', 'abcd-efgj'))).toBe(false);
      expect(MfaCrypto.sameHash(hash, hash.slice(0, 62))).toBe(false);
      expect(MfaCrypto.sameHash('', '')).toBe(false);
    });
  });
});
