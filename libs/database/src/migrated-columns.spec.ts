import { migratedColumns } from './migrated-columns';

describe('migratedColumns', () => {
  it('reads created tables in column order, without constraints', async () => {
    const tables = await migratedColumns();
    expect(tables.get('refresh_tokens')).toEqual(['id', 'session_id', 'token_hash', 'expires_at', 'used_at', 'created_at']);
  });

  it('follows ADD COLUMN and DROP COLUMN of later migrations', async () => {
    const tables = await migratedColumns();
    // 1764900000000 adds mac, 1764930000000 adds caller_permissions.
    expect(tables.get('audit_logs')).toContain('mac');
    expect(tables.get('tool_executions')?.at(-1)).toBe('caller_permissions');
  });
});
