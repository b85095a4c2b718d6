import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The keyed audit chain: each new row carries `mac`, an HMAC under a key the database never
 * sees (AUDIT_HMAC_KEY), so whoever can rewrite the table (its owner can disable the append-only
 * triggers) can no longer recompute a chain that verifies. Rows written before stay as they are,
 * with no MAC, and still verify by their SHA-256 chain.
 */
export class AuditKeyedChain1764900000000 implements MigrationInterface {
  name = 'AuditKeyedChain1764900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_logs ADD COLUMN mac text`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE audit_logs DROP COLUMN mac`);
  }
}
