import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Upstream tool definitions are screened for hidden text and instructions to the model
 * (libs/tools/src/upstream/definition-screen.ts). A definition flagged on first sight is held
 * with nothing approved, so `approved_*` may be null; `findings` records what the screen found in
 * the offered definition.
 */
export class UpstreamPinScreening1764920000000 implements MigrationInterface {
  name = 'UpstreamPinScreening1764920000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE upstream_tool_pins ALTER COLUMN approved_hash DROP NOT NULL`);
    await q.query(`ALTER TABLE upstream_tool_pins ALTER COLUMN approved_definition DROP NOT NULL`);
    await q.query(`ALTER TABLE upstream_tool_pins ADD COLUMN findings jsonb NOT NULL DEFAULT '[]'::jsonb`);
  }

  async down(q: QueryRunner): Promise<void> {
    // A held definition has nothing approved; it leaves the table rather than becoming trusted.
    await q.query(`DELETE FROM upstream_tool_pins WHERE approved_hash IS NULL`);
    await q.query(`ALTER TABLE upstream_tool_pins DROP COLUMN findings`);
    await q.query(`ALTER TABLE upstream_tool_pins ALTER COLUMN approved_definition SET NOT NULL`);
    await q.query(`ALTER TABLE upstream_tool_pins ALTER COLUMN approved_hash SET NOT NULL`);
  }
}
