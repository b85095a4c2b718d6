import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The OAuth authorization server (libs/oauth).
 *
 * `oauth_store`: what the certified provider library (oidc-provider) persists through its adapter,
 * one row per artefact: authorization codes, refresh tokens, grants, interactions, browser sessions,
 * registered clients. `payload` is the library's own JSON; the other columns are the lookups its
 * adapter contract needs (by grant for revocation, by interaction uid, expiry, consumption).
 *
 * `oauth_grants`: our view of each grant a user consented to: whose, for which client, scopes and
 * resources, and the gateway session (`sessions` row) its tokens belong to: ending that session
 * ends the grant's tokens at once. A consent is remembered per user and client until revoked.
 */
export class OAuth1764950000000 implements MigrationInterface {
  name = 'OAuth1764950000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE oauth_store (
      model text NOT NULL,
      id text NOT NULL,
      payload jsonb NOT NULL,
      grant_id text,
      uid text,
      expires_at timestamptz,
      consumed_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (model, id)
    )`);
    await q.query(`CREATE INDEX oauth_store_grant_idx ON oauth_store (grant_id) WHERE grant_id IS NOT NULL`);
    await q.query(`CREATE INDEX oauth_store_uid_idx ON oauth_store (uid) WHERE uid IS NOT NULL`);
    await q.query(`CREATE INDEX oauth_store_expires_idx ON oauth_store (expires_at) WHERE expires_at IS NOT NULL`);
    await q.query(`CREATE TABLE oauth_grants (
      grant_id text PRIMARY KEY,
      user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
      client_id text NOT NULL,
      client_name text,
      session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
      scopes text[] NOT NULL DEFAULT '{}',
      resources text[] NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      revoked_at timestamptz
    )`);
    await q.query(`CREATE INDEX oauth_grants_user_client_idx ON oauth_grants (user_id, client_id) WHERE revoked_at IS NULL`);
    await q.query(`CREATE INDEX oauth_grants_session_idx ON oauth_grants (session_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE oauth_grants`);
    await q.query(`DROP TABLE oauth_store`);
  }
}
