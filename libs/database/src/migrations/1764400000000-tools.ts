import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The tool catalogue and the execution records.
 *
 * `tools` holds each tool's effective contract fields (what GET /tools shows) next to the
 * provider's own definition (`definition`, `definition_hash`) and the admin's `overrides`, so a
 * restart re-derives the effective fields from both and an override survives provider updates.
 * Tools a provider stops listing are marked `available = false`, never deleted (executions
 * point at them).
 *
 * `tool_executions` is both the record of every call and the durable queue of async calls:
 * pending rows are claimed with FOR UPDATE SKIP LOCKED under a lease (`locked_by`,
 * `locked_until`) and retried while `attempts` allows. `input` is what the record keeps (secrets
 * redacted, size bounded); `payload` is an async call's exact parameters as JSON text (text, not
 * jsonb, so nothing is lost), kept only until the call has run.
 */
export class Tools1764400000000 implements MigrationInterface {
  name = 'Tools1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tools (
        id text PRIMARY KEY,
        name text NOT NULL,
        description text NOT NULL DEFAULT '',
        version text NOT NULL,
        category text NOT NULL CHECK (category IN ('system', 'data', 'analytics', 'monitoring')),
        enabled boolean NOT NULL DEFAULT true,
        input_schema jsonb NOT NULL,
        output_schema jsonb NOT NULL,
        permissions text[] NOT NULL DEFAULT '{}',
        rate_limit_requests integer NOT NULL CHECK (rate_limit_requests > 0),
        rate_limit_window text NOT NULL,
        provider text NOT NULL,
        annotations jsonb NOT NULL DEFAULT '{}',
        definition jsonb NOT NULL,
        definition_hash text NOT NULL,
        overrides jsonb NOT NULL DEFAULT '{}',
        available boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        updated_by text
      )`);
    await q.query(`
      CREATE TABLE tool_executions (
        id text PRIMARY KEY,
        tool_id text NOT NULL REFERENCES tools (id),
        user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        session_id text,
        request_id text,
        request_hash text,
        status text NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
        async boolean NOT NULL DEFAULT false,
        input jsonb NOT NULL DEFAULT '{}',
        payload text,
        result jsonb,
        error jsonb,
        timeout_ms integer NOT NULL,
        ip_address text,
        user_agent text,
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        finished_at timestamptz,
        duration_ms double precision,
        attempts integer NOT NULL DEFAULT 0,
        locked_by text,
        locked_until timestamptz
      )`);
    // Idempotency: one execution per caller and requestId; the insert-or-return relies on it.
    await q.query(`CREATE UNIQUE INDEX tool_executions_request_key ON tool_executions (user_id, request_id) WHERE request_id IS NOT NULL`);
    await q.query(`CREATE INDEX tool_executions_user_idx ON tool_executions (user_id, created_at DESC)`);
    await q.query(`CREATE INDEX tool_executions_tool_idx ON tool_executions (tool_id, created_at DESC)`);
    // The queue scans only unfinished rows; finished ones (almost all of them) stay out of this index.
    await q.query(`CREATE INDEX tool_executions_unfinished_idx ON tool_executions (created_at) WHERE status IN ('pending', 'running')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE tool_executions`);
    await q.query(`DROP TABLE tools`);
  }
}
