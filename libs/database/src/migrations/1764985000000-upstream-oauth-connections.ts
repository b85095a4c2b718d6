import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `auth: user-oauth` (issue 17): a user's connection made through the upstream's authorization
 * server is a row of upstream_credentials too. Its sealed value holds the user's access and
 * refresh tokens (never in plaintext); `expires_at` is when the access token expires (refreshed
 * before), `status` turns `broken` when the authorization server refused the refresh token, until
 * the user connects again.
 */
export class UpstreamOAuthConnections1764985000000 implements MigrationInterface {
  name = 'UpstreamOAuthConnections1764985000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE upstream_credentials DROP CONSTRAINT IF EXISTS upstream_credentials_mode_check`);
    await q.query(
      `ALTER TABLE upstream_credentials ADD CONSTRAINT upstream_credentials_mode_check CHECK (mode IN ('user-secret', 'user-oauth'))`,
    );
    await q.query(`ALTER TABLE upstream_credentials ADD COLUMN expires_at timestamptz`);
    await q.query(
      `ALTER TABLE upstream_credentials ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'broken'))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM upstream_credentials WHERE mode = 'user-oauth'`);
    await q.query(`ALTER TABLE upstream_credentials DROP COLUMN status`);
    await q.query(`ALTER TABLE upstream_credentials DROP COLUMN expires_at`);
    await q.query(`ALTER TABLE upstream_credentials DROP CONSTRAINT IF EXISTS upstream_credentials_mode_check`);
    await q.query(`ALTER TABLE upstream_credentials ADD CONSTRAINT upstream_credentials_mode_check CHECK (mode IN ('user-secret'))`);
  }
}
