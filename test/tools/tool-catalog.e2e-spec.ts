import { DataSource } from 'typeorm';
import { DATABASE_KINDS, http, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, execute, login, signUp, toolsEnv, updateTool } from './tools-test-kit';
import { TestToolsModule } from './test-tools.module';

const TOOL_FIELDS = ['category', 'description', 'enabled', 'id', 'name', 'permissions', 'rateLimit', 'schema', 'version'];
const BUILTIN = ['tool_echo', 'tool_filesystem', 'tool_http_fetch', 'tool_json_query', 'tool_statistics', 'tool_system_metrics'];
const TEST_TOOLS = ['tool_bad_output', 'tool_crash', 'tool_sleep', 'tool_stubborn'];

describe.each(DATABASE_KINDS)('tool catalogue (%s)', (kind) => {
  let t: TestApp;
  let db: DataSource;
  let admin: Caller;
  let user: Caller;

  beforeAll(async () => {
    t = await startTestApp(kind, { env: toolsEnv(), extraModules: [TestToolsModule] });
    db = t.app.get(DataSource);
    admin = await login(t, ADMIN_EMAIL);
    user = await signUp(t, 'catalogue.user@example.com');
  });
  afterAll(() => t?.close());

  const list = (query = '', caller = user) => http(t.baseUrl, 'GET', `/api/v1/tools${query}`, { token: caller.token });

  describe('GET /tools', () => {
    it("lists every provider's tools, sorted by id, with the contract's fields only", async () => {
      const res = await list();
      expect(res.status).toBe(200);
      expect(res.body.tools.map((tool: { id: string }) => tool.id)).toEqual([...BUILTIN, ...TEST_TOOLS].sort());
      expect(res.body.pagination).toEqual({ page: 1, limit: 20, total: 10, pages: 1 });
      for (const tool of res.body.tools) {
        expect(Object.keys(tool).sort()).toEqual(TOOL_FIELDS);
        expect(Object.keys(tool.schema).sort()).toEqual(['input', 'output']);
        expect(tool.schema.input.type).toBe('object');
        expect(Object.keys(tool.rateLimit).sort()).toEqual(['requests', 'window']);
      }
    });

    it('filters by category and by enabled', async () => {
      const data = await list('?category=data');
      expect(data.status).toBe(200);
      expect(data.body.tools.length).toBeGreaterThan(0);
      expect(data.body.tools.every((tool: { category: string }) => tool.category === 'data')).toBe(true);
      expect(data.body.pagination.total).toBe(data.body.tools.length);

      expect((await list('?enabled=false')).body.tools).toEqual([]);
      expect((await list('?enabled=true')).body.pagination.total).toBe(10);
      expect((await list('?category=monitoring&enabled=true')).body.tools.map((tool: { id: string }) => tool.id)).toEqual([
        'tool_system_metrics',
      ]);
    });

    it('pages', async () => {
      const res = await list('?page=2&limit=3');
      expect(res.status).toBe(200);
      expect(res.body.tools.map((tool: { id: string }) => tool.id)).toEqual([...BUILTIN, ...TEST_TOOLS].sort().slice(3, 6));
      expect(res.body.pagination).toEqual({ page: 2, limit: 3, total: 10, pages: 4 });
      expect((await list('?page=9&limit=3')).body.tools).toEqual([]);
    });

    it('refuses a limit above 100 and other bad queries with 400 naming the field', async () => {
      const tooMany = await list('?limit=101');
      expect(tooMany.status).toBe(400);
      expect(tooMany.body.error).toBe('VALIDATION_ERROR');
      expect(tooMany.body.details.map((d: { field: string }) => d.field)).toContain('limit');
      expect((await list('?limit=100')).status).toBe(200);
      for (const [query, field] of [
        ['?category=astrology', 'category'],
        ['?enabled=maybe', 'enabled'],
        ['?page=0', 'page'],
        ['?colour=red', 'colour'],
      ]) {
        const res = await list(query);
        expect({ query, status: res.status, fields: res.body.details?.map((d: { field: string }) => d.field) }).toEqual({
          query,
          status: 400,
          fields: [field],
        });
      }
    });

    it('needs a valid token', async () => {
      expect((await http(t.baseUrl, 'GET', '/api/v1/tools')).status).toBe(401);
      expect((await http(t.baseUrl, 'GET', '/api/v1/tools', { token: 'nope' })).status).toBe(401);
    });
  });

  describe('GET /tools/{id}', () => {
    it('returns one tool', async () => {
      const res = await http(t.baseUrl, 'GET', '/api/v1/tools/tool_echo', { token: user.token });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id: 'tool_echo',
        name: 'echo',
        category: 'data',
        enabled: true,
        permissions: ['tools:execute'],
        rateLimit: { requests: 600, window: '1m' },
      });
      expect(res.body.schema.input.required).toEqual(['message']);
      expect(Object.keys(res.body).sort()).toEqual(TOOL_FIELDS);
    });

    it('answers 404 for an unknown tool', async () => {
      const res = await http(t.baseUrl, 'GET', '/api/v1/tools/tool_nonexistent', { token: user.token });
      expect(res.status).toBe(404);
      expect(res.body.error).toBe('NOT_FOUND');
    });
  });

  describe('PUT /admin/tools/{id}', () => {
    afterEach(async () => {
      await updateTool(t, admin, 'tool_echo', { enabled: null, rateLimit: null, permissions: null });
    });

    it('is for admins only', async () => {
      const res = await updateTool(t, user, 'tool_echo', { enabled: false });
      expect(res.status).toBe(403);
      expect((await http(t.baseUrl, 'GET', '/api/v1/tools/tool_echo', { token: user.token })).body.enabled).toBe(true);
    });

    it('disables and enables a tool, audited; a disabled tool answers 403 TOOL_DISABLED', async () => {
      const disabled = await updateTool(t, admin, 'tool_echo', { enabled: false });
      expect(disabled.status).toBe(200);
      expect(disabled.body.enabled).toBe(false);
      expect((await list('?enabled=false')).body.tools.map((tool: { id: string }) => tool.id)).toEqual(['tool_echo']);

      const refused = await execute(t, user, 'tool_echo', { parameters: { message: 'hi' } });
      expect(refused.status).toBe(403);
      expect(refused.body.error).toBe('TOOL_DISABLED');

      const enabled = await updateTool(t, admin, 'tool_echo', { enabled: true });
      expect(enabled.body.enabled).toBe(true);
      expect((await execute(t, user, 'tool_echo', { parameters: { message: 'hi' } })).status).toBe(200);

      const audit = await db.query(
        `SELECT user_id, resource, severity, details FROM audit_logs WHERE action = 'admin.tool.updated' ORDER BY seq DESC LIMIT 2`,
      );
      expect(audit.map((row: { details: any }) => row.details.after.enabled)).toEqual([true, false]);
      expect(audit[1]).toMatchObject({ user_id: admin.userId, resource: 'tool:tool_echo', severity: 'warning' });
      const refusal = await db.query(
        `SELECT result, details FROM audit_logs WHERE action = 'tool.execute' AND user_id = $1 AND details->>'reason' = 'TOOL_DISABLED'`,
        [user.userId],
      );
      expect(refusal).toHaveLength(1);
      expect(refusal[0].result).toBe('failure');
    });

    it('changes the rate limit and the required permissions; null returns to the provider default', async () => {
      const res = await updateTool(t, admin, 'tool_echo', {
        rateLimit: { requests: 5, window: '30s' },
        permissions: ['tools:execute', 'admin:tools:write'],
      });
      expect(res.status).toBe(200);
      expect(res.body.rateLimit).toEqual({ requests: 5, window: '30s' });
      expect(res.body.permissions).toEqual(['admin:tools:write', 'tools:execute']);
      const reset = await updateTool(t, admin, 'tool_echo', { rateLimit: null });
      expect(reset.body.rateLimit).toEqual({ requests: 600, window: '1m' });
      expect(reset.body.permissions).toEqual(['admin:tools:write', 'tools:execute']);
    });

    it('validates the change', async () => {
      const cases: Array<[Record<string, unknown>, string | undefined]> = [
        [{}, undefined],
        [{ enabled: 'no' }, 'enabled'],
        [{ rateLimit: { requests: 0, window: '1m' } }, 'rateLimit.requests'],
        [{ rateLimit: { requests: 5, window: '5 minutes' } }, 'rateLimit.window'],
        [{ rateLimit: { requests: 5, window: '8d' } }, 'rateLimit.window'],
        [{ permissions: ['Not A Permission'] }, 'permissions'],
        [{ permissions: 'tools:execute' }, 'permissions'],
        [{ owner: 'me' }, 'owner'],
      ];
      for (const [body, field] of cases) {
        const res = await updateTool(t, admin, 'tool_echo', body);
        expect({ body, status: res.status, error: res.body.error }).toEqual({ body, status: 400, error: 'VALIDATION_ERROR' });
        if (field) expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
      }
      expect((await updateTool(t, admin, 'tool_nonexistent', { enabled: false })).status).toBe(404);
    });
  });
});

describe.each(DATABASE_KINDS)('tool catalogue across restarts (%s)', (kind) => {
  it('keeps admin overrides and marks tools whose provider is gone as unavailable', async () => {
    const first = await startTestApp(kind, { env: toolsEnv(), extraModules: [TestToolsModule] });
    let second: TestApp | undefined;
    try {
      const admin = await login(first, ADMIN_EMAIL);
      expect((await updateTool(first, admin, 'tool_echo', { enabled: false, rateLimit: { requests: 7, window: '1h' } })).status).toBe(200);
      expect((await updateTool(first, admin, 'tool_sleep', { rateLimit: { requests: 3, window: '1m' } })).status).toBe(200);
      await first.stop();

      // The test provider is not composed this time: its tools vanish from listings but keep their rows.
      second = await startTestApp(kind, { env: toolsEnv(), reuse: first });
      const admin2 = await login(second, ADMIN_EMAIL);
      const echo = await http(second.baseUrl, 'GET', '/api/v1/tools/tool_echo', { token: admin2.token });
      expect(echo.body).toMatchObject({ enabled: false, rateLimit: { requests: 7, window: '1h' } });
      expect((await http(second.baseUrl, 'GET', '/api/v1/tools/tool_sleep', { token: admin2.token })).status).toBe(404);
      const db = second.app.get(DataSource);
      const [sleep] = await db.query(`SELECT available, overrides FROM tools WHERE id = 'tool_sleep'`);
      expect(sleep).toEqual({ available: false, overrides: { rateLimit: { requests: 3, window: '1m' } } });
      const reconciled = await db.query(`SELECT details FROM audit_logs WHERE action = 'tool.catalog.reconciled' ORDER BY seq`);
      expect(reconciled[reconciled.length - 1].details.unavailable).toEqual([
        'tool_bad_output',
        'tool_crash',
        'tool_sleep',
        'tool_stubborn',
      ]);
      await second.stop();

      // Back again: available, override intact.
      const third = await startTestApp(kind, { env: toolsEnv(), extraModules: [TestToolsModule], reuse: first });
      second = third;
      const admin3 = await login(third, ADMIN_EMAIL);
      const back = await http(third.baseUrl, 'GET', '/api/v1/tools/tool_sleep', { token: admin3.token });
      expect(back.status).toBe(200);
      expect(back.body.rateLimit).toEqual({ requests: 3, window: '1m' });
    } finally {
      await second?.stop();
      await first.close();
    }
  });
});
