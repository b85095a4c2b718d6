import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Contexts: a user's named workspaces of tools. `tools` names catalogue ids (checked by the
 * service when written, not by a foreign key: a tool that disappears from its provider stays in
 * the catalogue as unavailable, and the context simply cannot run it). `metadata` and `settings`
 * are bounded JSON objects, validated by the service.
 */
export class Contexts1764500000000 implements MigrationInterface {
  name = 'Contexts1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE contexts (
        id text PRIMARY KEY,
        user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        name text NOT NULL,
        description text NOT NULL DEFAULT '',
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
        metadata jsonb NOT NULL DEFAULT '{}',
        tools text[] NOT NULL DEFAULT '{}',
        settings jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    // Listings are per owner (admins list everyone's, a sequential read of a small table).
    await q.query(`CREATE INDEX contexts_user_created_idx ON contexts (user_id, created_at DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE contexts`);
  }
}
