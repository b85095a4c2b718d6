import { DataSource } from 'typeorm';
import { UsersService } from '@app/users';
import { DATABASE_KINDS, http, startTestApp, TestApp } from '../support/test-app';
import { IDENTITY_ENV, IdentityClient, PASSWORD } from './identity.helpers';

const USER_KEYS = ['createdAt', 'email', 'id', 'mfaEnabled', 'name', 'permissions', 'roles', 'status', 'updatedAt'];

describe.each(DATABASE_KINDS)('accounts, tokens and sessions (%s)', (kind) => {
  let t: TestApp;
  let api: IdentityClient;
  let db: DataSource;

  beforeAll(async () => {
    t = await startTestApp(kind, { env: IDENTITY_ENV });
    api = new IdentityClient(t.baseUrl);
    db = t.app.get(DataSource);
  });
  afterAll(() => t?.close());

  const auditActions = async (userId: string): Promise<string[]> =>
    (await db.query(`SELECT action FROM audit_logs WHERE user_id = $1 ORDER BY seq`, [userId])).map((r: { action: string }) => r.action);

  describe('registration', () => {
    it('creates a user with the role user and returns the User schema without secrets', async () => {
      const res = await api.register('Alice.Register@Example.com', PASSWORD, { organization: 'Acme', phone: '+14155550100' });
      expect(res.status).toBe(201);
      expect(Object.keys(res.body).sort()).toEqual(USER_KEYS);
      expect(res.body).toMatchObject({
        id: expect.stringMatching(/^usr_/),
        email: 'alice.register@example.com',
        name: 'Alice.Register',
        roles: ['user'],
        permissions: [],
        mfaEnabled: false,
        status: 'active',
      });
      expect(res.text).not.toMatch(/\$2[aby]\$/);
      const [row] = await db.query(`SELECT password_hash FROM users WHERE id = $1`, [res.body.id]);
      expect(row.password_hash).toMatch(/^\$2b\$04\$/);
      expect(await auditActions(res.body.id)).toEqual(['auth.register']);
    });

    it('refuses a duplicate email in any letter case with 409', async () => {
      expect((await api.register('dup@example.com')).status).toBe(201);
      const res = await api.register('DUP@Example.COM');
      expect(res.status).toBe(409);
      expect(res.body.error).toBe('CONFLICT');
    });

    it.each([
      ['too weak', 'hunter2'],
      ['without a special character', 'Vq7xkLm2pXz9Ab'],
      ['longer than 72 bytes', `Aa1!${'x'.repeat(69)}`],
      ['common', 'Password123!'],
      ['common in leetspeak', 'P@ssw0rd1234'],
    ])('refuses a password that is %s with 400', async (_why, password) => {
      const res = await api.register(`weak.${Math.random().toString(36).slice(2)}@example.com`, password);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('VALIDATION_ERROR');
      expect(res.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'password' })]));
      expect(res.text).not.toContain(password);
    });

    it.each([
      ['roles', { roles: ['admin'] }],
      ['permissions', { permissions: ['admin:users:write'] }],
      ['status', { status: 'active' }],
      ['mfaEnabled', { mfaEnabled: true }],
    ])('refuses the unknown property %s', async (field, extra) => {
      const res = await api.register(`sneaky.${field}@example.com`, PASSWORD, extra);
      expect(res.status).toBe(400);
      expect(res.body.details).toEqual([expect.objectContaining({ field, code: 'unknownProperty' })]);
    });

    it('refuses a malformed email or phone', async () => {
      expect((await api.register('not-an-email')).status).toBe(400);
      expect((await api.register('phone@example.com', PASSWORD, { phone: '0155 5555' })).status).toBe(400);
    });
  });

  describe('the token lifecycle', () => {
    it('register → login → protected route → refresh → reuse kills the session → logout ends it at once', async () => {
      const email = 'flow@example.com';
      expect((await api.register(email)).status).toBe(201);

      const login = await api.login(email, PASSWORD, { 'user-agent': 'flow-test/1.0' });
      expect(login.status).toBe(200);
      expect(Object.keys(login.body).sort()).toEqual(['accessToken', 'expiresIn', 'refreshToken', 'tokenType', 'user']);
      expect(login.body).toMatchObject({ tokenType: 'Bearer', expiresIn: 900, user: { email, lastLogin: expect.any(String) } });
      const { accessToken, refreshToken } = login.body;
      const userId = login.body.user.id;

      // Every login opens a session row.
      const claims = JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString());
      expect(claims).toMatchObject({ sub: userId, sid: expect.stringMatching(/^ses_/), roles: ['user'], typ: 'access' });
      const [session] = await db.query(`SELECT * FROM sessions WHERE id = $1`, [claims.sid]);
      expect(session).toMatchObject({
        user_id: userId,
        status: 'active',
        connection_type: 'http',
        ip_address: '127.0.0.1',
        user_agent: 'flow-test/1.0',
      });
      // The refresh token is stored only as its hash.
      const tokens = await db.query(`SELECT token_hash FROM refresh_tokens WHERE session_id = $1`, [claims.sid]);
      expect(tokens).toHaveLength(1);
      expect(tokens[0].token_hash).not.toContain(refreshToken);

      const me = await api.me(accessToken);
      expect(me.status).toBe(200);
      expect(me.body).toMatchObject({ id: userId, email, roles: ['user'] });

      const refreshed = await api.refresh(refreshToken);
      expect(refreshed.status).toBe(200);
      expect(Object.keys(refreshed.body).sort()).toEqual(['accessToken', 'expiresIn', 'refreshToken', 'tokenType']);
      expect(refreshed.body.refreshToken).not.toBe(refreshToken);
      expect((await api.me(refreshed.body.accessToken)).status).toBe(200);

      // The old refresh token again: reuse, the whole session is revoked.
      const reused = await api.refresh(refreshToken);
      expect(reused.status).toBe(401);
      expect(reused.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect((await api.me(refreshed.body.accessToken)).status).toBe(401);
      expect((await api.me(accessToken)).status).toBe(401);
      expect((await api.refresh(refreshed.body.refreshToken)).status).toBe(401);
      const [revoked] = await db.query(`SELECT status, end_reason FROM sessions WHERE id = $1`, [claims.sid]);
      expect(revoked).toEqual({ status: 'terminated', end_reason: 'refresh_reuse' });
      const [reuseRecord] = await db.query(`SELECT severity, result FROM audit_logs WHERE user_id = $1 AND action = 'auth.refresh_reuse'`, [
        userId,
      ]);
      expect(reuseRecord).toEqual({ severity: 'critical', result: 'failure' });

      // A new login, then logout: the access token fails on the very next request.
      const again = await api.login(email);
      expect(again.status).toBe(200);
      expect((await api.me(again.body.accessToken)).status).toBe(200);
      const logout = await api.logout(again.body.accessToken);
      expect(logout.status).toBe(200);
      expect(logout.body).toEqual({ message: expect.any(String), timestamp: expect.any(String) });
      const after = await api.me(again.body.accessToken);
      expect(after.status).toBe(401);
      expect(after.body.error).toBe('UNAUTHORIZED');
      expect((await api.refresh(again.body.refreshToken)).status).toBe(401);
      expect((await api.logout(again.body.accessToken)).status).toBe(401);

      expect(await auditActions(userId)).toEqual([
        'auth.register',
        'auth.login',
        'auth.refresh',
        'auth.refresh_reuse',
        'auth.login',
        'auth.logout',
      ]);
    });

    it('lets exactly one of ten parallel refreshes with the same token succeed', async () => {
      const { refreshToken, user } = await api.session('parallel@example.com');
      const results = await Promise.all(Array.from({ length: 10 }, () => api.refresh(refreshToken)));
      const statuses = results.map((r) => r.status).sort();
      expect(statuses).toEqual([200, ...Array(9).fill(401)]);
      const actions = await auditActions(user.id);
      expect(actions.filter((a) => a === 'auth.refresh')).toHaveLength(1);
      // The other nine presented a used token: the session is revoked (reuse detection).
      const winner = results.find((r) => r.status === 200)!;
      expect((await api.me(winner.body.accessToken)).status).toBe(401);
    });

    it('refuses refresh without a token, with an access token, or with garbage', async () => {
      const { accessToken } = await api.session('refresh-misuse@example.com');
      for (const token of [undefined, accessToken, 'rt_nonsense', 'x'.repeat(300)]) {
        const res = await http(t.baseUrl, 'POST', '/api/v1/auth/refresh', token ? { token } : {});
        expect(res.status).toBe(401);
      }
      expect((await api.me(accessToken)).status).toBe(200);
    });

    it('denies every route without a token by default, with WWW-Authenticate', async () => {
      for (const [method, path] of [
        ['GET', '/api/v1/auth/me'],
        ['POST', '/api/v1/auth/logout'],
        ['GET', '/api/v1/admin/users'],
      ]) {
        const res = await http(t.baseUrl, method, path);
        expect(res.status).toBe(401);
        expect(res.body.error).toBe('UNAUTHORIZED');
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
      }
      expect((await http(t.baseUrl, 'GET', '/api/v1/health')).status).toBe(200);
    });
  });

  describe('suspended and deleted users', () => {
    it('cannot log in or use tokens they already hold', async () => {
      const { accessToken, refreshToken, user } = await api.session('suspend-me@example.com');
      const second = await api.login('suspend-me@example.com');
      const admin = await api.adminToken();

      const suspended = await http(t.baseUrl, 'POST', `/api/v1/admin/users/${user.id}/suspend`, { token: admin });
      expect(suspended.status).toBe(200);
      expect(suspended.body.status).toBe('suspended');
      expect((await api.me(accessToken)).status).toBe(401);
      expect((await api.me(second.body.accessToken)).status).toBe(401);
      expect((await api.refresh(refreshToken)).status).toBe(401);
      const ended = await db.query(`SELECT DISTINCT status, end_reason FROM sessions WHERE user_id = $1`, [user.id]);
      expect(ended).toEqual([{ status: 'terminated', end_reason: 'suspended' }]);

      const refused = await api.login('suspend-me@example.com');
      expect(refused.status).toBe(401);
      expect(refused.body.error).toBe('UNAUTHORIZED');

      expect((await http(t.baseUrl, 'POST', `/api/v1/admin/users/${user.id}/suspend`, { token: admin })).status).toBe(409);
      const reactivated = await http(t.baseUrl, 'POST', `/api/v1/admin/users/${user.id}/reactivate`, { token: admin });
      expect(reactivated.status).toBe(200);
      expect(reactivated.body.status).toBe('active');
      const back = await api.login('suspend-me@example.com');
      expect(back.status).toBe(200);
      expect((await api.me(back.body.accessToken)).status).toBe(200);
      expect(await auditActions(user.id)).toEqual(expect.arrayContaining(['auth.login_failed']));
    });

    it('refuses a deleted user even with the right password and a token issued before', async () => {
      const { accessToken, user } = await api.session('deleted@example.com');
      // No route deletes users yet; whatever does will change the row and invalidate the cached state.
      await db.query(`UPDATE users SET status = 'deleted' WHERE id = $1`, [user.id]);
      await t.app.get(UsersService).invalidate(user.id);
      expect((await api.me(accessToken)).status).toBe(401);
      expect((await api.login('deleted@example.com')).status).toBe(401);
    });
  });
});
