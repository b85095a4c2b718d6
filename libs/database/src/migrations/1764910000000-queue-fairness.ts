import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The async queue claims fairly between users (libs/tools/src/execution): each claim counts the
 * running calls per user and the pending calls of the submitting user. This partial index holds
 * only unfinished async rows, by user, so those counts never read a user's finished history.
 */
export class QueueFairness1764910000000 implements MigrationInterface {
  name = 'QueueFairness1764910000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX tool_executions_queued_user_idx ON tool_executions (user_id, created_at)
        WHERE async AND status IN ('pending', 'running')`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX tool_executions_queued_user_idx`);
  }
}
