import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An async execution runs later, from the queue, as its user. When a narrower credential (an
 * agent API key) queued it, `caller_permissions` keeps that credential's effective permissions
 * (a JSON array as text) so the run never has more than the caller had; null: the user's own.
 */
export class ExecutionCallerPermissions1764930000000 implements MigrationInterface {
  name = 'ExecutionCallerPermissions1764930000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tool_executions ADD COLUMN caller_permissions text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tool_executions DROP COLUMN caller_permissions`);
  }
}
