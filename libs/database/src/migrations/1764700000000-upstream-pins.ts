import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Definition pins of federated upstream MCP tools (libs/tools/src/upstream).
 *
 * One row per upstream tool id, written the first time the tool is seen (trust on first use).
 * `approved_*` is the definition calls are allowed under; `offered_*` what the upstream listed
 * last. They differ while `status = 'pending'`: the tool is disabled until an administrator
 * approves the offered hash (`approved_by`, `approved_at`). No foreign key to `tools`: the pin
 * is written before the catalogue row, and it outlives the tool so a returning tool is checked
 * against what was trusted before.
 */
export class UpstreamPins1764700000000 implements MigrationInterface {
  name = 'UpstreamPins1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE upstream_tool_pins (
        tool_id text PRIMARY KEY,
        upstream text NOT NULL,
        upstream_tool text NOT NULL,
        approved_hash text NOT NULL,
        approved_definition jsonb NOT NULL,
        offered_hash text NOT NULL,
        offered_definition jsonb NOT NULL,
        status text NOT NULL CHECK (status IN ('approved', 'pending')),
        first_seen_at timestamptz NOT NULL DEFAULT now(),
        changed_at timestamptz,
        approved_at timestamptz,
        approved_by text REFERENCES users (id) ON DELETE SET NULL
      )`);
    await q.query(`CREATE INDEX upstream_tool_pins_upstream_idx ON upstream_tool_pins (upstream)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE upstream_tool_pins`);
  }
}
