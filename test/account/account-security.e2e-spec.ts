import { createHmac } from 'node:crypto';
import * as speakeasy from 'speakeasy';
import { DataSource } from 'typeorm';
import { ADMIN_EMAIL, IDENTITY_ENV, IdentityClient, PASSWORD } from '../auth/identity.helpers';
import { DATABASE_KINDS, http, HttpResult, startTestApp, TestApp } from '../support/test-app';

const NEW_PASSWORD = 'Nw8&hQ4zLr6tPe';
const LOCKOUT_THRESHOLD = 3;

/** The contract's Error body with the given status and code. */
function expectError(res: HttpResult, status: number, error: string): void {
  expect({ status: res.status, error: res.body?.error }).toEqual({ status, error });
  expect(res.body).toEqual({
    error,
    message: expect.any(String),
    details: expect.any(Array),
    timestamp: expect.any(String),
    requestId: expect.any(String),
    traceId: expect.any(String),
  });
}

describe.each(DATABASE_KINDS)('account security: password change, admin MFA reset, token responses (%s)', (kind) => {
  let t: TestApp;
  let id: IdentityClient;
  let db: DataSource;

  beforeAll(async () => {
    t = await startTestApp(kind, { env: { ...IDENTITY_ENV, LOCKOUT_THRESHOLD: String(LOCKOUT_THRESHOLD) } });
    id = new IdentityClient(t.baseUrl);
    db = t.app.get(DataSource);
  });
  afterAll(async () => {
    await t?.close();
  });

  const changePassword = (token: string | undefined, body: unknown) => http(t.baseUrl, 'POST', '/api/v1/auth/password', { token, body });
  const resetMfa = (token: string, userId: string) => http(t.baseUrl, 'POST', `/api/v1/admin/users/${userId}/mfa/reset`, { token });
  const createKey = (token: string, body: Record<string, unknown> = { name: 'agent' }) =>
    http(t.baseUrl, 'POST', '/api/v1/auth/api-keys', { token, body });
  const auditRows = (
    action: string,
    resource: string,
  ): Promise<Array<{ user_id: string; result: string; severity: string; details: any }>> =>
    db.query(`SELECT user_id, result, severity, details FROM audit_logs WHERE action = $1 AND resource = $2 ORDER BY seq`, [
      action,
      resource,
    ]);
  const enableTotp = async (token: string): Promise<void> => {
    const enabled = await http(t.baseUrl, 'POST', '/api/v1/auth/mfa/enable', { token, body: { type: 'totp' } });
    expect(enabled.status).toBe(200);
    const code = speakeasy.totp({ secret: enabled.body.secret, encoding: 'base32' });
    expect((await http(t.baseUrl, 'POST', '/api/v1/auth/mfa/verify', { token, body: { type: 'totp', code } })).status).toBe(200);
  };

  describe('POST /auth/password', () => {
    const email = 'pat.change@example.com';
    let userId: string;
    let current: string;
    let other: { accessToken: string; refreshToken: string };
    let apiKey: string;

    beforeAll(async () => {
      const first = await id.session(email);
      userId = first.user.id;
      current = first.accessToken;
      other = await id.session(email);
      const key = await createKey(current);
      expect(key.status).toBe(201);
      apiKey = key.body.key;
    });

    it('refuses anonymous callers with 401 and API keys with 403', async () => {
      expectError(await changePassword(undefined, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }), 401, 'UNAUTHORIZED');
      expectError(
        await changePassword(apiKey, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD }),
        403,
        'INTERACTIVE_LOGIN_REQUIRED',
      );
    });

    it('refuses a new password that breaks the policy, naming the field', async () => {
      const res = await changePassword(current, { currentPassword: PASSWORD, newPassword: 'password1234' });
      expectError(res, 400, 'VALIDATION_ERROR');
      expect(res.body.details).toEqual([
        { field: 'newPassword', message: expect.stringContaining('at least 12 characters'), code: 'acceptablePassword' },
      ]);
      const common = await changePassword(current, { currentPassword: PASSWORD, newPassword: 'P@ssw0rd1234' });
      expect(common.body.details).toEqual([
        { field: 'newPassword', message: expect.stringContaining('too common'), code: 'acceptablePassword' },
      ]);
    });

    it('refuses missing fields, unknown fields and the same password again', async () => {
      const missing = await changePassword(current, { newPassword: NEW_PASSWORD });
      expectError(missing, 400, 'VALIDATION_ERROR');
      // One detail per broken constraint, all of them naming the missing field.
      expect([...new Set(missing.body.details.map((d: { field: string }) => d.field))]).toEqual(['currentPassword']);
      const extra = await changePassword(current, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD, userId: 'usr_other' });
      expectError(extra, 400, 'VALIDATION_ERROR');
      expect(extra.body.details).toEqual([expect.objectContaining({ field: 'userId', code: 'unknownProperty' })]);
      const same = await changePassword(current, { currentPassword: PASSWORD, newPassword: PASSWORD });
      expectError(same, 400, 'VALIDATION_ERROR');
      expect(same.body.details).toEqual([{ field: 'newPassword', message: expect.stringContaining('differ'), code: 'differentPassword' }]);
    });

    it('refuses a wrong current password with 400 INVALID_CURRENT_PASSWORD, audited, changing nothing', async () => {
      const res = await changePassword(current, { currentPassword: 'Wr0ng$Password1', newPassword: NEW_PASSWORD });
      expectError(res, 400, 'INVALID_CURRENT_PASSWORD');
      expect(res.body.details).toEqual([{ field: 'currentPassword', message: expect.any(String), code: 'INVALID_CURRENT_PASSWORD' }]);
      expect((await id.me(other.accessToken)).status).toBe(200);
      expect((await id.login(email, PASSWORD)).status).toBe(200);
      const failures = await auditRows('auth.password_change_failed', `user:${userId}`);
      expect(failures.map((row) => ({ result: row.result, reason: row.details.reason }))).toEqual([
        { result: 'failure', reason: 'wrong_current_password' },
      ]);
    });

    it('changes the password, ends the other sessions (refresh tokens too) and keeps this one, with its audit record', async () => {
      const res = await changePassword(current, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD });
      expect(res.status).toBe(200);
      // The other interactive login, the one made by the previous test, and the API key's session.
      expect(res.body).toEqual({ message: 'Password changed', sessionsEnded: 3, timestamp: expect.any(String) });

      expect((await id.me(current)).status).toBe(200);
      expectError(await id.me(other.accessToken), 401, 'UNAUTHORIZED');
      expectError(await id.refresh(other.refreshToken), 401, 'UNAUTHORIZED');
      expectError(await id.login(email, PASSWORD), 401, 'UNAUTHORIZED');
      expect((await id.login(email, NEW_PASSWORD)).status).toBe(200);
      // The key itself stays valid (it opens a new session); only a user login manages it.
      expect((await id.me(apiKey)).status).toBe(200);

      const changed = await auditRows('auth.password_changed', `user:${userId}`);
      expect(changed.map((row) => ({ userId: row.user_id, result: row.result, sessionsEnded: row.details.sessionsEnded }))).toEqual([
        { userId, result: 'success', sessionsEnded: 3 },
      ]);
    });

    it('counts wrong current passwords toward the lockout: then 429 ACCOUNT_LOCKED, and login is locked too', async () => {
      const victim = await id.session('pat.locked@example.com');
      for (let i = 0; i < LOCKOUT_THRESHOLD; i++) {
        expectError(
          await changePassword(victim.accessToken, { currentPassword: `Wr0ng$Password${i}`, newPassword: NEW_PASSWORD }),
          400,
          'INVALID_CURRENT_PASSWORD',
        );
      }
      const locked = await changePassword(victim.accessToken, { currentPassword: PASSWORD, newPassword: NEW_PASSWORD });
      expectError(locked, 429, 'ACCOUNT_LOCKED');
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
      expectError(await id.login('pat.locked@example.com', PASSWORD), 401, 'UNAUTHORIZED');
    });
  });

  describe('POST /admin/users/{id}/mfa/reset', () => {
    const email = 'mia.reset@example.com';
    let userId: string;
    let userToken: string;
    let adminToken: string;
    let adminId: string;

    beforeAll(async () => {
      const user = await id.session(email);
      userId = user.user.id;
      userToken = user.accessToken;
      await enableTotp(userToken);
      const admin = await id.session(ADMIN_EMAIL, IDENTITY_ENV.ADMIN_PASSWORD);
      adminToken = admin.accessToken;
      adminId = admin.user.id;
    });

    it('is for administrators with a user login: 401 anonymous, 403 for a user and for an admin API key', async () => {
      expectError(await http(t.baseUrl, 'POST', `/api/v1/admin/users/${userId}/mfa/reset`), 401, 'UNAUTHORIZED');
      expectError(await resetMfa(userToken, userId), 403, 'FORBIDDEN');
      const key = await createKey(adminToken, { name: 'admin-agent' });
      expect(key.status).toBe(201);
      expectError(await resetMfa(key.body.key, userId), 403, 'INTERACTIVE_LOGIN_REQUIRED');
      expect((await id.login(email, PASSWORD)).body.error).toBe('MFA_REQUIRED');
    });

    it('answers 404 for an unknown user and 409 for the caller themselves', async () => {
      expectError(await resetMfa(adminToken, 'usr_doesnotexist'), 404, 'NOT_FOUND');
      expectError(await resetMfa(adminToken, adminId), 409, 'CONFLICT');
    });

    it('removes the factor and ends every session of the user, audited as critical', async () => {
      const res = await resetMfa(adminToken, userId);
      expect(res.status).toBe(200);
      expect(res.body.user).toMatchObject({ id: userId, email, mfaEnabled: false });
      // Only the enrolling login was active (an answer of MFA_REQUIRED opens no session).
      expect(res.body.sessionsEnded).toBe(1);
      expectError(await id.me(userToken), 401, 'UNAUTHORIZED');

      const login = await id.login(email, PASSWORD);
      expect(login.status).toBe(200);
      expect(login.body.user.mfaEnabled).toBe(false);
      const [factor] = await db.query(`SELECT count(*)::int AS n FROM user_mfa WHERE user_id = $1`, [userId]);
      const [codes] = await db.query(`SELECT count(*)::int AS n FROM mfa_backup_codes WHERE user_id = $1`, [userId]);
      expect({ factors: factor.n, backupCodes: codes.n }).toEqual({ factors: 0, backupCodes: 0 });

      const rows = await auditRows('admin.user.mfa_reset', `user:${userId}`);
      expect(rows).toEqual([
        {
          user_id: adminId,
          result: 'success',
          severity: 'critical',
          details: { removedType: 'totp', removedPendingType: null, sessionsEnded: 1 },
        },
      ]);
    });

    it('answers 409 MFA_NOT_ENABLED when there is nothing to reset, ending no session', async () => {
      const fresh = (await id.login(email, PASSWORD)).body.accessToken;
      expectError(await resetMfa(adminToken, userId), 409, 'MFA_NOT_ENABLED');
      expect((await id.me(fresh)).status).toBe(200);
    });
  });

  describe('token responses and token checks', () => {
    const email = 'tess.tokens@example.com';

    const expectNoStore = (res: HttpResult, status: number) => {
      expect({ status: res.status, cacheControl: res.headers.get('cache-control'), pragma: res.headers.get('pragma') }).toEqual({
        status,
        cacheControl: 'no-store',
        pragma: 'no-cache',
      });
    };

    it('login, refresh, MFA enable and verify and API key creation answer Cache-Control: no-store', async () => {
      await id.register(email);
      const login = await id.login(email);
      expectNoStore(login, 200);
      const refreshed = await id.refresh(login.body.refreshToken);
      expectNoStore(refreshed, 200);
      const token = refreshed.body.accessToken;
      expectNoStore(await createKey(token), 201);
      const enabled = await http(t.baseUrl, 'POST', '/api/v1/auth/mfa/enable', { token, body: { type: 'totp' } });
      expectNoStore(enabled, 200);
      const code = speakeasy.totp({ secret: enabled.body.secret, encoding: 'base32' });
      expectNoStore(await http(t.baseUrl, 'POST', '/api/v1/auth/mfa/verify', { token, body: { type: 'totp', code } }), 200);
    });

    it('refuses an access token whose nbf is in the future', async () => {
      await id.register('nora.nbf@example.com');
      const { accessToken } = (await id.login('nora.nbf@example.com')).body;
      const claims = JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString());
      const resign = (payload: Record<string, unknown>) => {
        const input = `${accessToken.split('.')[0]}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
        return `${input}.${createHmac('sha256', t.config.secrets.jwtSecret).update(input).digest('base64url')}`;
      };
      // The forgery is otherwise perfect: the same claims re-signed are accepted.
      expect((await id.me(resign(claims))).status).toBe(200);
      expectError(await id.me(resign({ ...claims, nbf: claims.iat + 3600 })), 401, 'UNAUTHORIZED');
      expect((await id.me(resign({ ...claims, nbf: claims.iat }))).status).toBe(200);
    });
  });
});
