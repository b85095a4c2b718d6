import { displayPrefix, generateApiKey, hashApiKey, isWellFormedApiKey, looksLikeApiKey, sameHash } from './api-key-secret';

describe('agent API key secrets', () => {
  it('are smcp_ plus 256 random bits, told apart from JWTs by their prefix', () => {
    const key = generateApiKey();
    expect(key).toMatch(/^smcp_[A-Za-z0-9_-]{43}$/);
    expect(isWellFormedApiKey(key)).toBe(true);
    expect(looksLikeApiKey(key)).toBe(true);
    expect(looksLikeApiKey('eyJhbGciOiJIUzI1NiJ9.e30.x')).toBe(false);
    expect(isWellFormedApiKey('smcp_short')).toBe(false);
    expect(generateApiKey()).not.toBe(key);
  });

  it('are stored as their SHA-256 and shown by a short prefix only', () => {
    const key = generateApiKey();
    expect(hashApiKey(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashApiKey(key)).not.toContain(key.slice(5));
    expect(displayPrefix(key)).toBe(key.slice(0, 11));
    expect(sameHash(hashApiKey(key), hashApiKey(key))).toBe(true);
    expect(sameHash(hashApiKey(key), hashApiKey(generateApiKey()))).toBe(false);
  });
});
