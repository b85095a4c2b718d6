import { generateKeyPairSync } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import { cimdHostAllowed } from './oauth-provider';
import { signingKeyOf } from './oauth-keys';

describe('CIMD host policy', () => {
  it('allows any host without a list, else exact names and *.suffix', () => {
    expect(cimdHostAllowed('https://app.example.com/client.json', [])).toBe(true);
    expect(cimdHostAllowed('https://app.example.com/client.json', ['app.example.com'])).toBe(true);
    expect(cimdHostAllowed('https://a.vendor.io/c', ['*.vendor.io'])).toBe(true);
    expect(cimdHostAllowed('https://vendor.io.evil.com/c', ['*.vendor.io'])).toBe(false);
    expect(cimdHostAllowed('https://evilvendor.io/c', ['*.vendor.io'])).toBe(false);
    expect(cimdHostAllowed('https://other.example.com/c', ['app.example.com'])).toBe(false);
  });
});

describe('signing keys', () => {
  it('turns an EC P-256 PEM into an ES256 key whose kid is its thumbprint', async () => {
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const key = await signingKeyOf(pem);
    expect(key.alg).toBe('ES256');
    expect(key.privateJwk).toMatchObject({ kty: 'EC', crv: 'P-256', kid: key.kid, alg: 'ES256', use: 'sig' });
    const jwt = await new SignJWT({ a: 1 })
      .setProtectedHeader({ alg: 'ES256' })
      .sign(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    await expect(jwtVerify(jwt, key.publicKey)).rejects.toThrow();
  });

  it('turns an RSA PEM into an RS256 key', async () => {
    const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect((await signingKeyOf(pem)).alg).toBe('RS256');
  });
});
