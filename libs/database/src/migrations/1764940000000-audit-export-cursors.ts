import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Audit export: one row per sink (webhook, file) with the position of the last record it has
 * confirmed (`last_seq`, the audit chain's total order, and that record's id and hash) and the
 * lease that lets one replica at a time export to the sink. Rows are created by the exporter
 * when a sink is first configured, starting before the first record (last_seq 0).
 */
export class AuditExportCursors1764940000000 implements MigrationInterface {
  name = 'AuditExportCursors1764940000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE audit_export_cursors (
      sink text PRIMARY KEY,
      last_seq bigint NOT NULL DEFAULT 0,
      last_id text,
      last_hash text,
      delivered_count bigint NOT NULL DEFAULT 0,
      last_delivered_at timestamptz,
      lease_owner text,
      lease_until timestamptz,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE audit_export_cursors`);
  }
}
