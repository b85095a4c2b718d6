import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as speakeasy from 'speakeasy';
import { DEVELOPMENT_SECRETS_FILE } from '@app/core';
import { BUILT_MAIN, ServerProcess, spawnServer, waitForHttp } from '../support/server-process';

const EMAIL = 'restart.totp@example.com';
const PASSWORD = 'Rest4rt$Totp9Q';

/**
 * The development server with no keys configured, restarted on the same data directory: what a
 * new user does with `npm start`. MFA seeds are encrypted under ENCRYPTION_KEY and backup codes
 * hashed under a key derived from it, so both must be the same key after the restart.
 */
describe('restart on the same data directory without configured keys (built server)', () => {
  let dataDir: string;
  let server: ServerProcess | undefined;
  const env = () => ({ DATA_DIR: dataDir, LOG_LEVEL: 'info', NODE_ENV: 'development', BCRYPT_COST: '4' });

  beforeAll(() => {
    if (!existsSync(BUILT_MAIN)) throw new Error(`Build first (npm run build): ${BUILT_MAIN} is missing`);
    dataDir = mkdtempSync(join(tmpdir(), 'smcp-restart-'));
  });
  afterEach(() => {
    server?.child.kill('SIGKILL');
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  const start = async () => {
    server = await spawnServer(env());
    await waitForHttp(`${server.baseUrl}/api/v1/ready`, 60_000);
    return server;
  };
  const stop = async (s: ServerProcess) => {
    s.child.kill('SIGTERM');
    expect(await s.exited).toBe(0);
  };
  const post = async (s: ServerProcess, path: string, body: unknown, token?: string) => {
    const res = await fetch(`${s.baseUrl}/api/v1${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  /** A code of the step after the current one: later than any code accepted before, within the drift window. */
  const nextStepCode = (secret: string) => speakeasy.totp({ secret, encoding: 'base32', time: Math.floor(Date.now() / 1000) + 30 });

  it('a TOTP user signs in with a code and with a backup code after the restart, and an earlier token still works', async () => {
    const first = await start();
    expect((await post(first, '/auth/register', { email: EMAIL, password: PASSWORD, name: 'Restart' })).status).toBe(201);
    const login = await post(first, '/auth/login', { email: EMAIL, password: PASSWORD });
    expect(login.status).toBe(200);
    const enabled = await post(first, '/auth/mfa/enable', { type: 'totp' }, login.body.accessToken);
    expect(enabled.status).toBe(200);
    const secret: string = enabled.body.secret;
    const backupCodes: string[] = enabled.body.backupCodes;
    const code = speakeasy.totp({ secret, encoding: 'base32' });
    expect((await post(first, '/auth/mfa/verify', { type: 'totp', code }, login.body.accessToken)).status).toBe(200);

    // The start said where the generated keys are kept.
    const persistedLine = first
      .stdout()
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line))
      .find((line) => Array.isArray(line.persisted));
    expect(persistedLine).toMatchObject({
      persisted: ['JWT_SECRET', 'ENCRYPTION_KEY', 'OAUTH_SIGNING_KEY'],
      file: join(dataDir, DEVELOPMENT_SECRETS_FILE),
    });
    // And told the person at the terminal first, on stderr (stdout above is all JSON).
    const summary = first.stderr().split('\n');
    expect(summary[0]).toMatch(/^Secure MCP Server \S+ \(development\) starting$/);
    expect(summary.find((line) => line.trim().startsWith('Keys'))?.trim()).toBe(
      `Keys      JWT_SECRET, ENCRYPTION_KEY, OAUTH_SIGNING_KEY generated once and kept in ${join(dataDir, DEVELOPMENT_SECRETS_FILE)} (mode 0600)`,
    );
    expect(summary.find((line) => line.startsWith('Ready: '))).toContain('No administrator yet');
    await stop(first);

    const file = join(dataDir, DEVELOPMENT_SECRETS_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(Object.keys(JSON.parse(readFileSync(file, 'utf8'))).sort()).toEqual(['ENCRYPTION_KEY', 'JWT_SECRET', 'OAUTH_SIGNING_KEY']);

    const second = await start();
    // Signed under the persisted JWT_SECRET before the restart (its session is still open).
    const me = await fetch(`${second.baseUrl}/api/v1/auth/me`, { headers: { authorization: `Bearer ${login.body.accessToken}` } });
    expect(me.status).toBe(200);

    expect((await post(second, '/auth/login', { email: EMAIL, password: PASSWORD })).body.error).toBe('MFA_REQUIRED');
    const withTotp = await post(second, '/auth/login', { email: EMAIL, password: PASSWORD, mfaCode: nextStepCode(secret) });
    expect({ status: withTotp.status, mfaEnabled: withTotp.body.user?.mfaEnabled }).toEqual({ status: 200, mfaEnabled: true });
    const withBackup = await post(second, '/auth/login', { email: EMAIL, password: PASSWORD, mfaCode: backupCodes[0] });
    expect(withBackup.status).toBe(200);
    // Single use still holds after the restart.
    expect((await post(second, '/auth/login', { email: EMAIL, password: PASSWORD, mfaCode: backupCodes[0] })).status).toBe(401);
    await stop(second);
  }, 180_000);

  it('refuses a key file others can read', async () => {
    const { chmodSync } = await import('node:fs');
    const file = join(dataDir, DEVELOPMENT_SECRETS_FILE);
    chmodSync(file, 0o644);
    try {
      const refused = await spawnServer(env());
      expect(await refused.exited).toBe(1);
      expect(refused.stderr()).toContain('must be readable by its owner only');
    } finally {
      chmodSync(file, 0o600);
    }
  }, 60_000);
});
