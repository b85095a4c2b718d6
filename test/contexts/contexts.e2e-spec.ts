import { DataSource } from 'typeorm';
import { AppException, assertToolInContext, Principal, resolvePermissions } from '@app/core';
import { ContextAccessService } from '@app/contexts';
import { DATABASE_KINDS, http, HttpResult, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, ADMIN_PASSWORD, comparable, controlClock, IDENTITY_ENV, IdentityClient } from '../auth/identity.helpers';

const CONTEXT_FIELDS = ['createdAt', 'description', 'id', 'metadata', 'name', 'settings', 'status', 'tools', 'updatedAt'];
const MAX_TIMEOUT_MS = 20_000;

interface Caller {
  userId: string;
  token: string;
}

/** An object nested `levels` deep (the object itself is level 1). */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: true };
  for (let i = 1; i < levels; i++) value = { inner: value };
  return value;
}

describe.each(DATABASE_KINDS)('contexts (%s)', (kind) => {
  let t: TestApp;
  let db: DataSource;
  let identity: IdentityClient;
  let alice: Caller;
  let bob: Caller;
  let admin: Caller;

  const api = (caller: Caller, method: string, path: string, body?: unknown): Promise<HttpResult> =>
    http(t.baseUrl, method, `/api/v1${path}`, { token: caller.token, body });
  const create = async (caller: Caller, body: Record<string, unknown>): Promise<any> => {
    const res = await api(caller, 'POST', '/contexts', body);
    if (res.status !== 201) throw new Error(`create: ${res.status} ${res.text}`);
    return res.body;
  };
  const auditOf = (contextId: string) =>
    db.query(`SELECT action, user_id, details FROM audit_logs WHERE resource = $1 ORDER BY seq`, [`context:${contextId}`]);
  const caller = async (email: string): Promise<Caller> => {
    const session = await identity.session(email);
    return { userId: session.user.id, token: session.accessToken };
  };
  const principalOf = (who: Caller, roles: Principal['roles'] = ['user']): Principal => ({
    userId: who.userId,
    email: 'x@example.com',
    sessionId: '',
    roles,
    // Scope follows effective permissions, as the guard builds them.
    permissions: resolvePermissions(roles, []),
    via: 'jwt',
  });

  beforeAll(async () => {
    t = await startTestApp(kind, {
      env: { ...IDENTITY_ENV, TOOLS_MAX_TIMEOUT_MS: String(MAX_TIMEOUT_MS), TOOLS_DEFAULT_TIMEOUT_MS: '5000' },
    });
    db = t.app.get(DataSource);
    identity = new IdentityClient(t.baseUrl);
    alice = await caller('alice.ctx@example.com');
    bob = await caller('bob.ctx@example.com');
    const adminSession = await identity.session(ADMIN_EMAIL, ADMIN_PASSWORD);
    admin = { userId: adminSession.user.id, token: adminSession.accessToken };
  });
  afterAll(() => t?.close());

  describe('create and read', () => {
    it('creates a context (201) in exactly the contract shape, with defaults, audited', async () => {
      const res = await api(alice, 'POST', '/contexts', { name: '  Research  ', tools: ['tool_echo'] });
      expect(res.status).toBe(201);
      expect(Object.keys(res.body).sort()).toEqual(CONTEXT_FIELDS);
      expect(res.body).toMatchObject({
        name: 'Research',
        description: '',
        status: 'active',
        metadata: {},
        tools: ['tool_echo'],
        settings: {},
      });
      expect(res.body.id).toMatch(/^ctx_/);
      expect(res.body.createdAt).toBe(res.body.updatedAt);

      const read = await api(alice, 'GET', `/contexts/${res.body.id}`);
      expect(read.status).toBe(200);
      expect(read.body).toEqual(res.body);

      const audit = await auditOf(res.body.id);
      expect(audit).toEqual([
        { action: 'context.create', user_id: alice.userId, details: { ownerId: alice.userId, name: 'Research', tools: ['tool_echo'] } },
      ]);
    });

    it('keeps metadata and settings as given, unknown setting keys included; repeated tools once', async () => {
      const body = {
        name: 'Full',
        description: 'Everything set',
        metadata: { team: 'data', tags: ['a', 'b'], owner: { name: 'Alice', level: 3 } },
        tools: ['tool_echo', 'tool_json_query', 'tool_echo'],
        settings: { defaultTimeoutMs: MAX_TIMEOUT_MS, rateLimit: { requests: 10, window: '1m' }, theme: 'dark', nested: { x: [1, 2] } },
      };
      const created = await create(alice, body);
      expect(created).toMatchObject({
        description: 'Everything set',
        metadata: body.metadata,
        tools: ['tool_echo', 'tool_json_query'],
        settings: body.settings,
      });
      expect((await api(alice, 'GET', `/contexts/${created.id}`)).body.settings).toEqual(body.settings);
    });

    it('requires a name and refuses unknown properties and malformed fields', async () => {
      for (const body of [
        {},
        { name: '   ' },
        { name: 'x'.repeat(201) },
        { name: 'ok', extra: 1 },
        { name: 'ok', tools: 'tool_echo' },
        { name: 'ok', tools: [1] },
      ]) {
        const res = await api(alice, 'POST', '/contexts', body);
        expect({ body, status: res.status, error: res.body.error }).toEqual({ body, status: 400, error: 'VALIDATION_ERROR' });
      }
    });

    it('needs a token', async () => {
      expect((await http(t.baseUrl, 'GET', '/api/v1/contexts')).status).toBe(401);
      expect((await http(t.baseUrl, 'POST', '/api/v1/contexts', { body: { name: 'x' } })).status).toBe(401);
    });
  });

  describe('tools', () => {
    it('refuses unknown tool ids with 400 and one detail per unknown id', async () => {
      const res = await api(alice, 'POST', '/contexts', { name: 'Bad', tools: ['tool_echo', 'tool_nope', 'tool_json_query', 'nothing'] });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('VALIDATION_ERROR');
      expect(res.body.details).toEqual([
        { field: 'tools[1]', message: 'Unknown tool: tool_nope', code: 'UNKNOWN_TOOL' },
        { field: 'tools[3]', message: 'Unknown tool: nothing', code: 'UNKNOWN_TOOL' },
      ]);
      const put = await api(alice, 'PUT', `/contexts/${(await create(alice, { name: 'Fine' })).id}`, { tools: ['tool_missing'] });
      expect(put.status).toBe(400);
      expect(put.body.details).toEqual([{ field: 'tools[0]', message: 'Unknown tool: tool_missing', code: 'UNKNOWN_TOOL' }]);
    });

    it('refuses tools the caller may not call (403 with details), and reports both kinds together as 400', async () => {
      const restricted = await http(t.baseUrl, 'PUT', '/api/v1/admin/tools/tool_statistics', {
        token: admin.token,
        body: { permissions: ['tools:execute', 'tools:statistics:run'] },
      });
      expect(restricted.status).toBe(200);
      try {
        const forbidden = await api(alice, 'POST', '/contexts', { name: 'Stats', tools: ['tool_echo', 'tool_statistics'] });
        expect(forbidden.status).toBe(403);
        expect(forbidden.body.error).toBe('FORBIDDEN');
        expect(forbidden.body.details).toEqual([
          { field: 'tools[1]', message: 'Calling tool_statistics requires: tools:statistics:run', code: 'TOOL_NOT_PERMITTED' },
        ]);
        const both = await api(alice, 'POST', '/contexts', { name: 'Stats', tools: ['tool_statistics', 'tool_nope'] });
        expect(both.status).toBe(400);
        expect(both.body.details.map((d: { field: string; code: string }) => [d.field, d.code])).toEqual([
          ['tools[1]', 'UNKNOWN_TOOL'],
          ['tools[0]', 'TOOL_NOT_PERMITTED'],
        ]);

        // Granted the permission, the same user may.
        expect((await identity.setRoles(admin.token, bob.userId, ['user'], ['tools:statistics:run'])).status).toBe(200);
        const allowed = await api(bob, 'POST', '/contexts', { name: 'Stats', tools: ['tool_statistics'] });
        expect(allowed.status).toBe(201);
      } finally {
        await http(t.baseUrl, 'PUT', '/api/v1/admin/tools/tool_statistics', { token: admin.token, body: { permissions: null } });
        await identity.setRoles(admin.token, bob.userId, ['user'], []);
      }
    });
  });

  describe('metadata and settings bounds', () => {
    it('accepts objects nested 5 levels and refuses 6 (400 naming the field)', async () => {
      expect((await api(alice, 'POST', '/contexts', { name: 'Deep', metadata: nested(5), settings: nested(5) })).status).toBe(201);
      for (const field of ['metadata', 'settings']) {
        const res = await api(alice, 'POST', '/contexts', { name: 'Deeper', [field]: nested(6) });
        expect(res.status).toBe(400);
        expect(res.body.details).toEqual([{ field, message: `${field} must not nest deeper than 5 levels`, code: 'boundedJsonObject' }]);
      }
      const arrays = await api(alice, 'POST', '/contexts', { name: 'Arrays', metadata: { a: [[[[[1]]]]] } });
      expect(arrays.status).toBe(400);
    });

    it('refuses more than 16 KiB and anything but an object', async () => {
      const big = { blob: 'x'.repeat(16 * 1024) };
      for (const field of ['metadata', 'settings']) {
        const res = await api(alice, 'POST', '/contexts', { name: 'Big', [field]: big });
        expect(res.status).toBe(400);
        expect(res.body.details[0]).toMatchObject({ field, code: 'boundedJsonObject' });
        expect(res.body.details[0].message).toContain('16384 bytes');
        for (const value of [[1, 2], 'text', 3, null]) {
          const bad = await api(alice, 'POST', '/contexts', { name: 'NotObject', [field]: value });
          expect({ field, value, status: bad.status }).toEqual({ field, value, status: 400 });
        }
      }
      const justUnder = { blob: 'x'.repeat(16 * 1024 - 20) };
      expect((await api(alice, 'POST', '/contexts', { name: 'Fits', metadata: justUnder })).status).toBe(201);
    });

    it('validates the settings it understands', async () => {
      const cases: Array<[Record<string, unknown>, string[]]> = [
        [{ defaultTimeoutMs: 0 }, ['settings.defaultTimeoutMs']],
        [{ defaultTimeoutMs: 1.5 }, ['settings.defaultTimeoutMs']],
        [{ defaultTimeoutMs: '100' }, ['settings.defaultTimeoutMs']],
        [{ defaultTimeoutMs: MAX_TIMEOUT_MS + 1 }, ['settings.defaultTimeoutMs']],
        [{ rateLimit: 5 }, ['settings.rateLimit']],
        [{ rateLimit: { requests: 0, window: '1m' } }, ['settings.rateLimit.requests']],
        [{ rateLimit: { requests: 5, window: '1 minute' } }, ['settings.rateLimit.window']],
        [{ rateLimit: { requests: 5, window: '8d' } }, ['settings.rateLimit.window']],
        [{ rateLimit: { requests: 5, window: '1m', burst: 2 } }, ['settings.rateLimit.burst']],
        [
          { defaultTimeoutMs: -1, rateLimit: {} },
          ['settings.defaultTimeoutMs', 'settings.rateLimit.requests', 'settings.rateLimit.window'],
        ],
      ];
      for (const [settings, fields] of cases) {
        const res = await api(alice, 'POST', '/contexts', { name: 'Settings', settings });
        expect({ settings, status: res.status, fields: (res.body.details ?? []).map((d: { field: string }) => d.field) }).toEqual({
          settings,
          status: 400,
          fields,
        });
      }
      const ok = await api(alice, 'POST', '/contexts', {
        name: 'Settings',
        settings: { defaultTimeoutMs: 1, rateLimit: { requests: 1, window: '7d' } },
      });
      expect(ok.status).toBe(201);
    });
  });

  describe('ownership', () => {
    it("hides a user's contexts from other users (404, like an unknown id) and lets admins see and manage them", async () => {
      const mine = await create(alice, { name: 'Private' });
      const unknown = await api(bob, 'GET', '/contexts/ctx_doesnotexist');
      expect(unknown.status).toBe(404);
      for (const [method, body] of [['GET'], ['PUT', { name: 'Taken' }], ['DELETE']] as const) {
        const res = await api(bob, method, `/contexts/${mine.id}`, body);
        expect(comparable(res)).toEqual(comparable(unknown));
      }
      const bobs = await api(bob, 'GET', '/contexts?limit=100');
      expect(bobs.body.contexts.map((c: { id: string }) => c.id)).not.toContain(mine.id);
      expect((await api(alice, 'GET', `/contexts/${mine.id}`)).body.name).toBe('Private');

      expect((await api(admin, 'GET', `/contexts/${mine.id}`)).status).toBe(200);
      const renamed = await api(admin, 'PUT', `/contexts/${mine.id}`, { name: 'Renamed by admin' });
      expect(renamed.status).toBe(200);
      expect((await api(alice, 'GET', `/contexts/${mine.id}`)).body.name).toBe('Renamed by admin');
      const audit = await auditOf(mine.id);
      expect(audit[1]).toMatchObject({ action: 'context.update', user_id: admin.userId, details: { ownerId: alice.userId } });
    });

    it("lists everyone's contexts for admins, with a userId filter only admins may point at others", async () => {
      const a = await create(alice, { name: 'A-listed' });
      const b = await create(bob, { name: 'B-listed' });
      const all = await api(admin, 'GET', '/contexts?limit=100');
      const ids = all.body.contexts.map((c: { id: string }) => c.id);
      expect(ids).toEqual(expect.arrayContaining([a.id, b.id]));
      const onlyBob = await api(admin, 'GET', `/contexts?limit=100&userId=${bob.userId}`);
      expect(onlyBob.body.contexts.map((c: { id: string }) => c.id)).toContain(b.id);
      expect(onlyBob.body.contexts.map((c: { id: string }) => c.id)).not.toContain(a.id);

      expect((await api(alice, 'GET', `/contexts?userId=${bob.userId}`)).status).toBe(403);
      const own = await api(alice, 'GET', `/contexts?limit=100&userId=${alice.userId}`);
      expect(own.status).toBe(200);
      expect(own.body.contexts.map((c: { id: string }) => c.id)).toContain(a.id);
    });
  });

  describe('update, archive, delete', () => {
    it('changes only the fields given and audits the change', async () => {
      const ctx = await create(alice, { name: 'Before', description: 'd', metadata: { a: 1 }, tools: ['tool_echo'] });
      const res = await api(alice, 'PUT', `/contexts/${ctx.id}`, { name: 'After', tools: ['tool_json_query'] });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ name: 'After', description: 'd', metadata: { a: 1 }, tools: ['tool_json_query'], status: 'active' });
      expect(Object.keys(res.body).sort()).toEqual(CONTEXT_FIELDS);
      const audit = await auditOf(ctx.id);
      expect(audit[1]).toEqual({
        action: 'context.update',
        user_id: alice.userId,
        details: {
          ownerId: alice.userId,
          changes: ['name', 'tools'],
          name: { before: 'Before', after: 'After' },
          tools: { before: ['tool_echo'], after: ['tool_json_query'] },
        },
      });
      const cleared = await api(alice, 'PUT', `/contexts/${ctx.id}`, { tools: [], metadata: {} });
      expect(cleared.body).toMatchObject({ tools: [], metadata: {} });
      expect((await api(alice, 'PUT', `/contexts/${ctx.id}`, {})).status).toBe(400);
      expect((await api(alice, 'PUT', `/contexts/${ctx.id}`, { status: 'deleted' })).status).toBe(400);
      expect((await api(alice, 'PUT', `/contexts/${ctx.id}`, { name: '' })).status).toBe(400);
      for (const field of ['name', 'description', 'metadata', 'tools', 'settings', 'status']) {
        const res = await api(alice, 'PUT', `/contexts/${ctx.id}`, { [field]: null });
        expect({ field, status: res.status, detail: res.body.details?.[0]?.field }).toEqual({ field, status: 400, detail: field });
      }
    });

    it('archives and reactivates through PUT status; an archived context refuses execution', async () => {
      const ctx = await create(alice, { name: 'Cycle', tools: ['tool_echo'] });
      const access = t.app.get(ContextAccessService);
      const owner = principalOf(alice);
      await expect(access.resolveForExecution(owner, ctx.id)).resolves.toEqual({ id: ctx.id, tools: ['tool_echo'], settings: {} });

      const archived = await api(alice, 'PUT', `/contexts/${ctx.id}`, { status: 'archived' });
      expect(archived.status).toBe(200);
      expect(archived.body.status).toBe('archived');
      const refused = await access.resolveForExecution(owner, ctx.id).catch((error: AppException) => error);
      expect(refused).toBeInstanceOf(AppException);
      expect(refused).toMatchObject({ code: 'CONTEXT_ARCHIVED' });
      expect((refused as AppException).getStatus()).toBe(403);

      const active = await api(alice, 'PUT', `/contexts/${ctx.id}`, { status: 'active' });
      expect(active.body.status).toBe('active');
      await expect(access.resolveForExecution(owner, ctx.id)).resolves.toMatchObject({ id: ctx.id });

      const audit = await auditOf(ctx.id);
      expect(audit.map((a: { action: string }) => a.action)).toEqual(['context.create', 'context.archive', 'context.update']);
      expect(audit[1].details).toMatchObject({ changes: ['status'], status: { before: 'active', after: 'archived' } });
      expect(audit[2].details).toMatchObject({ changes: ['status'], status: { before: 'archived', after: 'active' } });
    });

    it('resolves contexts for execution only for their owner or an admin, and checks the tool is in them', async () => {
      const ctx = await create(alice, { name: 'Exec', tools: ['tool_echo'], settings: { defaultTimeoutMs: 1000, custom: true } });
      const access = t.app.get(ContextAccessService);
      const resolved = await access.resolveForExecution(principalOf(alice), ctx.id);
      expect(resolved.settings).toEqual({ defaultTimeoutMs: 1000, custom: true });
      await expect(access.resolveForExecution(principalOf(admin, ['admin']), ctx.id)).resolves.toMatchObject({ id: ctx.id });
      const foreign = await access.resolveForExecution(principalOf(bob), ctx.id).catch((error: AppException) => error);
      expect((foreign as AppException).getStatus()).toBe(404);
      const missing = await access.resolveForExecution(principalOf(alice), 'ctx_missing').catch((error: AppException) => error);
      expect((missing as AppException).getStatus()).toBe(404);

      expect(() => assertToolInContext(resolved, 'tool_echo')).not.toThrow();
      let outside: unknown;
      try {
        assertToolInContext(resolved, 'tool_filesystem');
      } catch (error) {
        outside = error;
      }
      expect(outside).toMatchObject({ code: 'TOOL_NOT_IN_CONTEXT' });
      expect((outside as AppException).getStatus()).toBe(403);
    });

    it('deletes (204), then the context is gone (404), audited', async () => {
      const ctx = await create(alice, { name: 'Doomed' });
      const res = await api(alice, 'DELETE', `/contexts/${ctx.id}`);
      expect(res.status).toBe(204);
      expect(res.text).toBe('');
      expect((await api(alice, 'GET', `/contexts/${ctx.id}`)).status).toBe(404);
      expect((await api(alice, 'PUT', `/contexts/${ctx.id}`, { name: 'x' })).status).toBe(404);
      expect((await api(alice, 'DELETE', `/contexts/${ctx.id}`)).status).toBe(404);
      const audit = await auditOf(ctx.id);
      expect(audit.map((a: { action: string }) => a.action)).toEqual(['context.create', 'context.delete']);
      expect(audit[1]).toMatchObject({ user_id: alice.userId, details: { ownerId: alice.userId, name: 'Doomed' } });
    });

    it('lets an admin delete any context', async () => {
      const ctx = await create(bob, { name: 'Admin removes' });
      expect((await api(admin, 'DELETE', `/contexts/${ctx.id}`)).status).toBe(204);
      expect((await api(bob, 'GET', `/contexts/${ctx.id}`)).status).toBe(404);
    });
  });

  describe('listing: filters, sort, order, pages', () => {
    let carol: Caller;
    /** Created one minute apart, in this order. */
    const names = ['delta', 'Alpha', 'charlie', 'Bravo', 'echo'];
    const byName: Record<string, string> = {};

    beforeAll(async () => {
      carol = await caller('carol.ctx@example.com');
      const clock = controlClock(t.app);
      try {
        for (const name of names) {
          byName[name] = (await create(carol, { name })).id;
          clock.advance(60);
        }
        // Updated in another order than created: charlie last, Alpha before it.
        for (const name of ['Alpha', 'charlie']) {
          expect((await api(carol, 'PUT', `/contexts/${byName[name]}`, { description: 'touched' })).status).toBe(200);
          clock.advance(60);
        }
        // Two archived ones.
        for (const name of ['Bravo', 'echo']) {
          expect((await api(carol, 'PUT', `/contexts/${byName[name]}`, { status: 'archived' })).status).toBe(200);
          clock.advance(60);
        }
      } finally {
        clock.restore();
      }
    });

    const listNames = async (query: string): Promise<{ names: string[]; pagination: unknown; status: number }> => {
      const res = await api(carol, 'GET', `/contexts${query}`);
      return { status: res.status, names: (res.body.contexts ?? []).map((c: { name: string }) => c.name), pagination: res.body.pagination };
    };

    it('defaults to newest first with pagination', async () => {
      expect(await listNames('')).toEqual({
        status: 200,
        names: ['echo', 'Bravo', 'charlie', 'Alpha', 'delta'],
        pagination: { page: 1, limit: 20, total: 5, pages: 1 },
      });
    });

    it('sorts by created, updated and name, in both orders', async () => {
      expect((await listNames('?sort=created&order=asc')).names).toEqual(names);
      expect((await listNames('?sort=created&order=desc')).names).toEqual([...names].reverse());
      // Last updated: echo (archived last), Bravo, charlie, Alpha, then delta (never updated).
      expect((await listNames('?sort=updated')).names).toEqual(['echo', 'Bravo', 'charlie', 'Alpha', 'delta']);
      expect((await listNames('?sort=updated&order=asc')).names).toEqual(['delta', 'Alpha', 'charlie', 'Bravo', 'echo']);
      // Case does not decide the order.
      expect((await listNames('?sort=name')).names).toEqual(['Alpha', 'Bravo', 'charlie', 'delta', 'echo']);
      expect((await listNames('?sort=name&order=desc')).names).toEqual(['echo', 'delta', 'charlie', 'Bravo', 'Alpha']);
    });

    it('filters by status', async () => {
      expect(await listNames('?status=archived&sort=name')).toMatchObject({ names: ['Bravo', 'echo'], pagination: { total: 2 } });
      expect(await listNames('?status=active&sort=name')).toMatchObject({ names: ['Alpha', 'charlie', 'delta'], pagination: { total: 3 } });
    });

    it('pages', async () => {
      expect(await listNames('?sort=name&limit=2')).toEqual({
        status: 200,
        names: ['Alpha', 'Bravo'],
        pagination: { page: 1, limit: 2, total: 5, pages: 3 },
      });
      expect((await listNames('?sort=name&limit=2&page=2')).names).toEqual(['charlie', 'delta']);
      expect((await listNames('?sort=name&limit=2&page=3')).names).toEqual(['echo']);
      expect(await listNames('?sort=name&limit=2&page=4')).toMatchObject({ names: [], pagination: { page: 4, total: 5, pages: 3 } });
      expect(await listNames('?status=active&sort=created&order=asc&limit=1&page=2')).toMatchObject({
        names: ['Alpha'],
        pagination: { total: 3, pages: 3 },
      });
    });

    it('refuses bad parameters', async () => {
      for (const query of ['?limit=101', '?limit=0', '?page=0', '?sort=size', '?order=up', '?status=deleted']) {
        expect({ query, status: (await listNames(query)).status }).toEqual({ query, status: 400 });
      }
      expect((await listNames('?limit=100')).status).toBe(200);
    });
  });
});
