import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Each user's own credential for an upstream MCP server (issue 17: `auth: user-secret`): one per
 * user and upstream, the secret only as AES-256-GCM ciphertext (CredentialCipher; the key never
 * reaches the database). Deleted with the user; `version` grows at every replacement so a
 * connection opened with an older secret is never reused.
 */
export class UpstreamCredentials1764975000000 implements MigrationInterface {
  name = 'UpstreamCredentials1764975000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE upstream_credentials (
      id text PRIMARY KEY,
      user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      upstream text NOT NULL,
      mode text NOT NULL CHECK (mode IN ('user-secret')),
      secret_ciphertext text NOT NULL,
      version integer NOT NULL DEFAULT 1,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      last_used_at timestamptz
    )`);
    await q.query(`CREATE UNIQUE INDEX upstream_credentials_user_upstream_key ON upstream_credentials (user_id, upstream)`);
    await q.query(`CREATE INDEX upstream_credentials_upstream_idx ON upstream_credentials (upstream)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE upstream_credentials`);
  }
}
