import { ClientSecretSeal } from './client-secret-seal';

describe('ClientSecretSeal', () => {
  const seal = new ClientSecretSeal('k'.repeat(32));
  const metadata = { client_id: 'oac_1', client_name: 'App', client_secret: 's3cret-value' };

  it('stores no secret in the clear and opens it back for the same client', () => {
    const stored = seal.seal('oac_1', metadata);
    expect(stored.client_secret).toBeUndefined();
    expect(JSON.stringify(stored)).not.toContain('s3cret-value');
    expect(stored.client_name).toBe('App');
    expect(seal.open('oac_1', stored)).toEqual(metadata);
  });

  it('refuses a sealed secret moved to another client or sealed under another key', () => {
    const stored = seal.seal('oac_1', metadata);
    expect(() => seal.open('oac_2', stored)).toThrow();
    expect(() => new ClientSecretSeal('x'.repeat(32)).open('oac_1', stored)).toThrow();
  });

  it('leaves public clients as they are', () => {
    const publicClient = { client_id: 'oac_3', token_endpoint_auth_method: 'none' };
    expect(seal.seal('oac_3', publicClient)).toEqual(publicClient);
    expect(seal.open('oac_3', publicClient)).toEqual(publicClient);
  });
});
