import { DataSource } from 'typeorm';
import { AUDIT_EXPORT_CURSORS_TABLE_COLUMNS, AUDIT_LOGS_COLUMNS } from '@app/audit';
import {
  API_KEY_TABLE_COLUMNS,
  BACKUP_CODE_TABLE_COLUMNS,
  REFRESH_TOKEN_TABLE_COLUMNS,
  SMS_CHALLENGE_TABLE_COLUMNS,
  USER_MFA_TABLE_COLUMNS,
} from '@app/auth';
import { CONTEXTS_COLUMNS } from '@app/contexts';
import { MIGRATIONS } from '@app/database';
import { IDENTITY_LINK_TABLE_COLUMNS } from '@app/identity';
import { MCP_SESSIONS_COLUMNS } from '@app/mcp-gateway';
import { OAUTH_GRANT_TABLE_COLUMNS, OAUTH_STORE_TABLE_COLUMNS } from '@app/oauth';
import { SESSION_TABLE_COLUMNS } from '@app/sessions';
import { TOOL_EXECUTIONS_COLUMNS, TOOLS_COLUMNS, UPSTREAM_CREDENTIALS_TABLE_COLUMNS, UPSTREAM_TOOL_PINS_COLUMNS } from '@app/tools';
import { USER_TABLE_COLUMNS } from '@app/users';
import { createTestDatabase, TestDatabase } from '../support/test-database';

/**
 * Every table's columns as its repository declares them (one `<TABLE>_COLUMNS` constant per
 * repository, a comma-separated string or a list). A new repository adds one line here.
 */
const REPOSITORY_COLUMNS: Record<string, string | readonly string[]> = {
  users: USER_TABLE_COLUMNS,
  sessions: SESSION_TABLE_COLUMNS,
  refresh_tokens: REFRESH_TOKEN_TABLE_COLUMNS,
  api_keys: API_KEY_TABLE_COLUMNS,
  user_mfa: USER_MFA_TABLE_COLUMNS,
  mfa_backup_codes: BACKUP_CODE_TABLE_COLUMNS,
  mfa_sms_challenges: SMS_CHALLENGE_TABLE_COLUMNS,
  audit_logs: AUDIT_LOGS_COLUMNS,
  audit_export_cursors: AUDIT_EXPORT_CURSORS_TABLE_COLUMNS,
  contexts: CONTEXTS_COLUMNS,
  mcp_sessions: MCP_SESSIONS_COLUMNS,
  oauth_store: OAUTH_STORE_TABLE_COLUMNS,
  oauth_grants: OAUTH_GRANT_TABLE_COLUMNS,
  tools: TOOLS_COLUMNS,
  tool_executions: TOOL_EXECUTIONS_COLUMNS,
  upstream_tool_pins: UPSTREAM_TOOL_PINS_COLUMNS,
  upstream_credentials: UPSTREAM_CREDENTIALS_TABLE_COLUMNS,
  identity_links: IDENTITY_LINK_TABLE_COLUMNS,
};

/** Tables with no repository, each with the reason. */
const WITHOUT_REPOSITORY: Record<string, string> = {
  migrations: "TypeORM's own record of applied migrations",
  installation: 'written only by migrations and the embedded-database template (libs/database)',
};

const columnsOf = (declared: string | readonly string[]): string[] =>
  (typeof declared === 'string' ? declared.split(',') : [...declared]).map((column) => column.trim()).filter((column) => column !== '');

/**
 * Migrations are the schema's one source; repositories name its columns in their SQL. Run every
 * migration on an empty database and compare what PostgreSQL then has with what the repositories
 * say, table by table, so a migration that adds, drops or renames a column fails here rather than
 * at the first query that meets it.
 */
describe('schema drift: migrations against repository column lists', () => {
  let database: TestDatabase;
  let dataSource: DataSource;
  let actual: Map<string, string[]>;

  beforeAll(async () => {
    database = await createTestDatabase('smcp_drift');
    dataSource = new DataSource({
      type: 'postgres',
      url: database.url,
      migrations: MIGRATIONS,
      migrationsTableName: 'migrations',
      logging: false,
    });
    await dataSource.initialize();
    await dataSource.runMigrations({ transaction: 'each' });
    const rows: Array<{ table_name: string; column_name: string }> = await dataSource.query(
      `SELECT c.table_name, c.column_name
         FROM information_schema.columns c
         JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
        WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
        ORDER BY c.table_name, c.ordinal_position`,
    );
    actual = new Map();
    for (const row of rows) actual.set(row.table_name, [...(actual.get(row.table_name) ?? []), row.column_name]);
  });

  afterAll(async () => {
    if (dataSource?.isInitialized) await dataSource.destroy();
    await database?.drop();
  });

  it('ran every migration', async () => {
    expect(await dataSource.showMigrations()).toBe(false);
    const [{ applied }]: Array<{ applied: number }> = await dataSource.query(`SELECT count(*)::int AS applied FROM migrations`);
    expect(applied).toBe(MIGRATIONS.length);
  });

  it('knows every table the migrations create: each has a repository or a stated reason for none', () => {
    const known = [...Object.keys(REPOSITORY_COLUMNS), ...Object.keys(WITHOUT_REPOSITORY)].sort();
    expect([...actual.keys()].sort()).toEqual(known);
  });

  it('declares no table twice and no column twice', () => {
    for (const table of Object.keys(REPOSITORY_COLUMNS)) expect(WITHOUT_REPOSITORY[table]).toBeUndefined();
    for (const [table, declared] of Object.entries(REPOSITORY_COLUMNS)) {
      const columns = columnsOf(declared);
      expect({ table, duplicates: columns.filter((column, i) => columns.indexOf(column) !== i) }).toEqual({ table, duplicates: [] });
    }
  });

  it.each(Object.keys(REPOSITORY_COLUMNS))('%s: the repository declares exactly the columns the migrations create', (table) => {
    const columns = actual.get(table) ?? [];
    const declared = columnsOf(REPOSITORY_COLUMNS[table]);
    expect(columns.length).toBeGreaterThan(0);
    expect({
      table,
      missingFromRepository: columns.filter((column) => !declared.includes(column)),
      absentFromSchema: declared.filter((column) => !columns.includes(column)),
    }).toEqual({ table, missingFromRepository: [], absentFromSchema: [] });
  });
});
