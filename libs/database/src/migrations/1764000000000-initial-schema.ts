import { MigrationInterface, QueryRunner } from 'typeorm';

/** The installation record: created once, kept for the life of the database. */
export class InitialSchema1764000000000 implements MigrationInterface {
  name = 'InitialSchema1764000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE installation (
        id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
        installation_id uuid NOT NULL DEFAULT gen_random_uuid(),
        installed_at timestamptz NOT NULL DEFAULT now(),
        schema_note text
      )`);
    await queryRunner.query(`INSERT INTO installation (id) VALUES (1)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE installation`);
  }
}
