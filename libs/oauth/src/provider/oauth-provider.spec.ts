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

describe('the test-only CIMD fetch', () => {
  it('fetches from loopback over https, trusting the configured CA, without following redirects', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
    const { createServer } = await import('node:https');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { testFetch } = await import('./oauth-provider');
    const dir = mkdtempSync(join(tmpdir(), 'smcp-cimd-'));
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-days',
          '1',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
        ],
        { stdio: 'ignore' },
      );
      const server = createServer(
        { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
        (request, response) => {
          if (request.url === '/moved') response.writeHead(302, { location: '/client.json' }).end();
          else response.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60' }).end('{"client_id":"x"}');
        },
      );
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as { port: number }).port;
      const fetchDocument = testFetch(join(dir, 'cert.pem'));
      const ok = await fetchDocument(`https://127.0.0.1:${port}/client.json`, { headers: { accept: 'application/json' } });
      expect({ status: ok.status, body: await ok.json(), cache: ok.headers.get('cache-control') }).toEqual({
        status: 200,
        body: { client_id: 'x' },
        cache: 'max-age=60',
      });
      expect((await fetchDocument(`https://127.0.0.1:${port}/moved`, {})).status).toBe(302);
      await expect(testFetch(undefined)(`https://127.0.0.1:${port}/client.json`, {})).rejects.toThrow();
      server.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
