import { PassThrough, Readable } from 'node:stream';
import { DataSource } from 'typeorm';
import { CliUsageError } from '../../apps/server/src/cli/cli-command';
import { createAdminCommand } from '../../apps/server/src/cli/create-admin.command';
import { DATABASE_KINDS, http, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, IDENTITY_ENV, IdentityClient } from './identity.helpers';

describe.each(DATABASE_KINDS)('roles, permissions and admin users (%s)', (kind) => {
  let t: TestApp;
  let api: IdentityClient;
  let db: DataSource;
  let admin: string;
  let adminId: string;

  beforeAll(async () => {
    t = await startTestApp(kind, { env: IDENTITY_ENV });
    api = new IdentityClient(t.baseUrl);
    db = t.app.get(DataSource);
    const session = await api.session(ADMIN_EMAIL, IDENTITY_ENV.ADMIN_PASSWORD);
    admin = session.accessToken;
    adminId = session.user.id;
  });
  afterAll(() => t?.close());

  const listUsers = (token: string, query = '') => http(t.baseUrl, 'GET', `/api/v1/admin/users${query}`, { token });
  const activeAdmins = async () =>
    (await db.query(`SELECT count(*)::int AS n FROM users WHERE 'admin' = ANY(roles) AND status = 'active'`))[0].n as number;

  /** Every admin operation in the generated OpenAPI document, so routes added later are covered too. */
  const adminRoutes = async (): Promise<Array<[string, string]>> => {
    const doc = await http(t.baseUrl, 'GET', '/api/docs-json');
    const routes: Array<[string, string]> = [];
    for (const [path, item] of Object.entries<Record<string, unknown>>(doc.body.paths)) {
      if (!path.startsWith('/admin')) continue;
      for (const method of Object.keys(item)) routes.push([method.toUpperCase(), `/api/v1${path.replace(/\{[^}]+\}/g, 'usr_x')}`]);
    }
    return routes;
  };

  describe('the first administrator', () => {
    it('was created from ADMIN_EMAIL / ADMIN_PASSWORD on first start, with an audit record', async () => {
      const res = await listUsers(admin, `?search=${encodeURIComponent(ADMIN_EMAIL)}`);
      expect(res.status).toBe(200);
      expect(res.body.users).toEqual([expect.objectContaining({ email: ADMIN_EMAIL, roles: ['admin'], status: 'active' })]);
      const [record] = await db.query(`SELECT user_id, resource, details FROM audit_logs WHERE action = 'admin.user.created'`);
      expect(record).toMatchObject({ user_id: null, resource: `user:${adminId}`, details: { source: 'config', email: ADMIN_EMAIL } });
    });
  });

  describe('non-admins', () => {
    it('get 403 on every admin route, as user and as developer', async () => {
      const routes = await adminRoutes();
      expect(routes).toEqual(
        expect.arrayContaining([
          ['GET', '/api/v1/admin/users'],
          ['PUT', '/api/v1/admin/users/usr_x/roles'],
          ['POST', '/api/v1/admin/users/usr_x/suspend'],
          ['POST', '/api/v1/admin/users/usr_x/reactivate'],
        ]),
      );
      const user = await api.session('plain.user@example.com');
      const developer = await api.session('dev.user@example.com');
      expect((await api.setRoles(admin, developer.user.id, ['developer'])).status).toBe(200);
      // A grant of an admin permission alone does not make an admin: the role is required too.
      const granted = await api.session('granted.user@example.com');
      expect((await api.setRoles(admin, granted.user.id, ['user'], ['admin:users:read', 'admin:users:write'])).status).toBe(200);

      for (const token of [user.accessToken, developer.accessToken, granted.accessToken]) {
        for (const [method, path] of routes) {
          const res = await http(t.baseUrl, method, path, { token, body: method === 'GET' ? undefined : { roles: ['admin'] } });
          expect({ method, path, status: res.status, error: res.body.error }).toEqual({ method, path, status: 403, error: 'FORBIDDEN' });
        }
      }
      expect(await activeAdmins()).toBe(1);
    });
  });

  describe('GET /admin/users', () => {
    beforeAll(async () => {
      for (const name of ['Carol Finder', 'carl finder', 'Dave Other']) {
        await api.register(`${name.toLowerCase().replace(' ', '.')}@finder.example.com`, undefined, { name });
      }
    });

    it('filters by case-insensitive search on email or name', async () => {
      const res = await listUsers(admin, '?search=FINDER');
      expect(res.status).toBe(200);
      expect(res.body.users.map((u: { name: string }) => u.name).sort()).toEqual(['Carol Finder', 'Dave Other', 'carl finder']);
      const byName = await listUsers(admin, '?search=CAR');
      expect(byName.body.users.map((u: { name: string }) => u.name).sort()).toEqual(['Carol Finder', 'carl finder']);
      expect((await listUsers(admin, `?search=${encodeURIComponent('%')}`)).body.users).toEqual([]);
    });

    it('filters by role and status and paginates', async () => {
      const admins = await listUsers(admin, '?role=admin');
      expect(admins.body.users.every((u: { roles: string[] }) => u.roles.includes('admin'))).toBe(true);
      const active = await listUsers(admin, '?status=active&limit=2&page=2');
      expect(active.body.users).toHaveLength(2);
      expect(active.body.pagination).toEqual({
        page: 2,
        limit: 2,
        total: expect.any(Number),
        pages: Math.ceil(active.body.pagination.total / 2),
      });
      expect(active.body.users.every((u: Record<string, unknown>) => !('passwordHash' in u) && !('failedLogins' in u))).toBe(true);
      expect((await listUsers(admin, '?status=suspended')).body.users).toEqual([]);
    });

    it('refuses bad filters with 400', async () => {
      for (const query of ['?limit=101', '?role=root', '?status=gone', '?page=0', '?unknown=1']) {
        expect({ query, status: (await listUsers(admin, query)).status }).toEqual({ query, status: 400 });
      }
    });
  });

  describe('PUT /admin/users/{id}/roles', () => {
    it('refuses unknown roles, no roles and malformed permissions with 400, unknown users with 404', async () => {
      const { user } = await api.session('roles.target@example.com');
      for (const body of [
        { roles: ['root'] },
        { roles: [] },
        { roles: 'admin' },
        {},
        { roles: ['user'], permissions: ['Not A Permission'] },
      ]) {
        const res = await http(t.baseUrl, 'PUT', `/api/v1/admin/users/${user.id}/roles`, { token: admin, body });
        expect({ body, status: res.status, error: res.body.error }).toEqual({ body, status: 400, error: 'VALIDATION_ERROR' });
      }
      expect((await api.setRoles(admin, 'usr_doesnotexist', ['user'])).status).toBe(404);
    });

    it('takes effect on the next request: granted and removed without logging in again', async () => {
      const promoted = await api.session('promoted@example.com');
      expect((await listUsers(promoted.accessToken)).status).toBe(403);

      const granted = await api.setRoles(admin, promoted.user.id, ['user', 'admin']);
      expect(granted.status).toBe(200);
      expect(granted.body).toMatchObject({ id: promoted.user.id, roles: ['user', 'admin'] });
      expect((await listUsers(promoted.accessToken)).status).toBe(200);

      expect((await api.setRoles(admin, promoted.user.id, ['user'])).status).toBe(200);
      const removed = await listUsers(promoted.accessToken);
      expect(removed.status).toBe(403);
      expect((await api.me(promoted.accessToken)).body.roles).toEqual(['user']);

      const records = await db.query(
        `SELECT user_id, details FROM audit_logs WHERE action = 'admin.user.roles_changed' AND resource = $1 ORDER BY seq`,
        [`user:${promoted.user.id}`],
      );
      expect(records).toEqual([
        {
          user_id: adminId,
          details: { before: { roles: ['user'], permissions: [] }, after: { roles: ['user', 'admin'], permissions: [] } },
        },
        {
          user_id: adminId,
          details: { before: { roles: ['user', 'admin'], permissions: [] }, after: { roles: ['user'], permissions: [] } },
        },
      ]);
    });

    it('the last active admin cannot lose the admin role', async () => {
      expect(await activeAdmins()).toBe(1);
      const res = await api.setRoles(admin, adminId, ['user']);
      expect(res.status).toBe(409);
      expect(res.body.error).toBe('LAST_ADMIN');
      expect((await listUsers(admin)).status).toBe(200);
      expect(await activeAdmins()).toBe(1);
    });

    it('of two admins demoting each other at the same time, one wins and one admin remains', async () => {
      const second = await api.session('second.admin@example.com');
      expect((await api.setRoles(admin, second.user.id, ['admin'])).status).toBe(200);
      expect(await activeAdmins()).toBe(2);

      const [a, b] = await Promise.all([
        api.setRoles(admin, second.user.id, ['user']),
        api.setRoles(second.accessToken, adminId, ['user']),
      ]);
      expect([a.status, b.status].filter((s) => s === 200)).toHaveLength(1);
      expect([a.status, b.status].filter((s) => s !== 200)[0]).toBeGreaterThanOrEqual(403);
      expect(await activeAdmins()).toBe(1);

      // Put the original admin back in charge for the rest of the suite.
      if (b.status === 200) {
        expect((await api.setRoles(second.accessToken, adminId, ['admin'])).status).toBe(200);
        expect((await api.setRoles(admin, second.user.id, ['user'])).status).toBe(200);
      }
      expect(await activeAdmins()).toBe(1);
      expect((await listUsers(admin)).status).toBe(200);
    });
  });

  describe('suspend and reactivate', () => {
    it('refuse to suspend oneself, unknown users, or reactivate an active user', async () => {
      expect((await http(t.baseUrl, 'POST', `/api/v1/admin/users/${adminId}/suspend`, { token: admin })).body.error).toBe(
        'INVALID_USER_STATUS',
      );
      expect((await http(t.baseUrl, 'POST', '/api/v1/admin/users/usr_nobody/suspend', { token: admin })).status).toBe(404);
      const { user } = await api.session('still.active@example.com');
      const res = await http(t.baseUrl, 'POST', `/api/v1/admin/users/${user.id}/reactivate`, { token: admin });
      expect(res.status).toBe(409);
      expect(res.body.error).toBe('INVALID_USER_STATUS');
    });

    it('suspension ends every session of the user at once and is audited', async () => {
      const first = await api.session('suspended.two@example.com');
      const second = await api.login('suspended.two@example.com');
      const res = await http(t.baseUrl, 'POST', `/api/v1/admin/users/${first.user.id}/suspend`, { token: admin });
      expect(res.status).toBe(200);
      expect((await api.me(first.accessToken)).status).toBe(401);
      expect((await api.me(second.body.accessToken)).status).toBe(401);
      const [record] = await db.query(
        `SELECT user_id, severity, details FROM audit_logs WHERE action = 'admin.user.suspended' AND resource = $1`,
        [`user:${first.user.id}`],
      );
      expect(record).toEqual({ user_id: adminId, severity: 'warning', details: { sessionsEnded: 2 } });
      expect((await http(t.baseUrl, 'POST', `/api/v1/admin/users/${first.user.id}/reactivate`, { token: admin })).status).toBe(200);
      const [reactivated] = await db.query(`SELECT user_id FROM audit_logs WHERE action = 'admin.user.reactivated' AND resource = $1`, [
        `user:${first.user.id}`,
      ]);
      expect(reactivated).toEqual({ user_id: adminId });
    });
  });

  describe('the create-admin command', () => {
    const run = async (args: string[], adminPassword: string | undefined, stdinText = '') => {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let out = '';
      let err = '';
      stdout.on('data', (chunk) => (out += chunk));
      stderr.on('data', (chunk) => (err += chunk));
      const stdin = Object.assign(Readable.from([stdinText]), { isTTY: false }) as unknown as NodeJS.ReadStream;
      const code = await createAdminCommand.run({ app: t.app, args, adminPassword, stdin, stdout, stderr });
      return { code, out, err };
    };

    it('creates an administrator with the password from ADMIN_PASSWORD', async () => {
      const result = await run(['--email', 'cli.admin@example.com', '--name', 'CLI Admin'], 'Cl1$AdminPassw0rdX');
      expect(result).toMatchObject({ code: 0, out: expect.stringContaining('cli.admin@example.com') });
      const login = await api.login('cli.admin@example.com', 'Cl1$AdminPassw0rdX');
      expect(login.status).toBe(200);
      expect(login.body.user.roles).toEqual(['admin']);
      const [record] = await db.query(`SELECT details FROM audit_logs WHERE action = 'admin.user.created' AND resource = $1`, [
        `user:${login.body.user.id}`,
      ]);
      expect(record.details).toMatchObject({ source: 'cli' });
      expect(JSON.stringify(record)).not.toContain('Cl1$AdminPassw0rdX');
    });

    it('reads the password from stdin when ADMIN_PASSWORD is not set', async () => {
      const result = await run(['--email=piped.admin@example.com', '--name=Piped'], undefined, 'S3cure$PipedPw1\nignored\n');
      expect(result.code).toBe(0);
      expect((await api.login('piped.admin@example.com', 'S3cure$PipedPw1')).status).toBe(200);
    });

    it('refuses a weak password, a taken email and bad arguments', async () => {
      const weak = await run(['--email', 'weak.admin@example.com', '--name', 'Weak'], 'admin');
      expect(weak.code).toBe(65);
      expect(weak.err).toContain('password must be at least 12 characters');
      expect(weak.err).not.toContain('admin\n');
      expect((await run(['--email', 'cli.admin@example.com', '--name', 'Again'], 'Cl1$AdminPassw0rdX')).code).toBe(65);
      await expect(run(['--email', 'x@example.com'], 'Cl1$AdminPassw0rdX')).rejects.toBeInstanceOf(CliUsageError);
      await expect(run(['--password', 'nope'], 'Cl1$AdminPassw0rdX')).rejects.toBeInstanceOf(CliUsageError);
    });
  });
});
