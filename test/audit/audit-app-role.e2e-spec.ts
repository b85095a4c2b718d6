import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AuditService } from '@app/audit';
import { http, startTestApp, TestApp } from '../support/test-app';
import { createTestDatabase, TestDatabase } from '../support/test-database';
import { ADMIN_EMAIL, login, toolsEnv } from '../tools/tools-test-kit';

const ADMIN_URL = process.env.TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * The deployment the audit integrity model asks for: migrations run as the tables' owner
 * (DATABASE_MIGRATION_URL), the server as a role that was granted rows, not the schema
 * (DATABASE_APP_ROLE). That role cannot switch the append-only triggers off or rewrite the log.
 * PostgreSQL only: the embedded database has one role.
 */
describe('server running as a role that cannot alter audit_logs', () => {
  const role = `smcp_app_${randomBytes(4).toString('hex')}`;
  let database: TestDatabase;
  let t: TestApp;
  let asApp: Client;

  const urlAs = (user: string) => {
    const url = new URL(database.url);
    url.username = user;
    return url.toString();
  };
  const asSuperuser = async (sql: string) => {
    const client = new Client({ connectionString: ADMIN_URL });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    await asSuperuser(`CREATE ROLE ${role} LOGIN`);
    t = await startTestApp('postgres', {
      reuse: { dataDir: '', database },
      env: toolsEnv({ DATABASE_URL: urlAs(role), DATABASE_MIGRATION_URL: database.url, DATABASE_APP_ROLE: role }),
    });
    asApp = new Client({ connectionString: urlAs(role) });
    await asApp.connect();
  });
  afterAll(async () => {
    await asApp?.end();
    await t?.close();
    await asSuperuser(`DROP ROLE IF EXISTS ${role}`);
  });

  it('serves, and writes a chain that verifies, as the app role', async () => {
    const [{ current_user }] = (await asApp.query('SELECT current_user')).rows;
    expect(current_user).toBe(role);
    const admin = await login(t, ADMIN_EMAIL);
    const verify = await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs/verify', { token: admin.token });
    expect(verify.body).toMatchObject({ valid: true, firstInvalid: null });
    expect(verify.body.checked).toBeGreaterThanOrEqual(2);
    expect((await t.app.get(AuditService).verifyChain()).valid).toBe(true);
  });

  it.each([
    ['disable the triggers', 'ALTER TABLE audit_logs DISABLE TRIGGER USER', /must be owner/],
    ['drop a trigger', 'DROP TRIGGER audit_logs_no_update_delete ON audit_logs', /must be owner/],
    ['update a record', `UPDATE audit_logs SET action = 'test.rewritten'`, /permission denied/],
    ['delete records', 'DELETE FROM audit_logs', /permission denied/],
    ['truncate the log', 'TRUNCATE audit_logs', /permission denied/],
    ['forge the migration history', `DELETE FROM migrations`, /permission denied/],
  ])('cannot %s', async (_what, sql, error) => {
    await expect(asApp.query(sql)).rejects.toThrow(error);
  });
});
