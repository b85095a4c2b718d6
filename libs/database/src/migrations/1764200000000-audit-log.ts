import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The audit log: append-only (triggers refuse UPDATE, DELETE and TRUNCATE; only someone able to
 * disable the triggers gets past them, and the application's hash chain, prev_hash → hash, then
 * shows what they changed).
 * No foreign key to users: records must outlive the accounts they describe.
 */
export class AuditLog1764200000000 implements MigrationInterface {
  name = 'AuditLog1764200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE audit_logs (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id text NOT NULL UNIQUE,
        timestamp timestamptz NOT NULL,
        user_id text,
        action text NOT NULL,
        resource text,
        details jsonb NOT NULL DEFAULT '{}',
        result text NOT NULL CHECK (result IN ('success', 'failure')),
        ip_address text,
        user_agent text,
        severity text NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
        metadata jsonb NOT NULL DEFAULT '{}',
        prev_hash text NOT NULL,
        hash text NOT NULL
      )`);
    await q.query(`CREATE INDEX audit_logs_timestamp_idx ON audit_logs (timestamp, seq)`);
    await q.query(`CREATE INDEX audit_logs_user_idx ON audit_logs (user_id, timestamp)`);
    await q.query(`CREATE INDEX audit_logs_action_idx ON audit_logs (action, timestamp)`);
    await q.query(`CREATE INDEX audit_logs_severity_idx ON audit_logs (severity, timestamp)`);
    await q.query(`
      CREATE FUNCTION audit_logs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit_logs is append-only: % is not allowed', TG_OP
          USING ERRCODE = 'insufficient_privilege';
      END
      $$`);
    await q.query(`
      CREATE TRIGGER audit_logs_no_update_delete
        BEFORE UPDATE OR DELETE ON audit_logs
        FOR EACH ROW EXECUTE FUNCTION audit_logs_append_only()`);
    await q.query(`
      CREATE TRIGGER audit_logs_no_truncate
        BEFORE TRUNCATE ON audit_logs
        FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_append_only()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE audit_logs`);
    await q.query(`DROP FUNCTION audit_logs_append_only()`);
  }
}
