import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Agent API keys: long-lived credentials a user creates for an agent (agents cannot type MFA
 * codes). Only the SHA-256 of a key is stored. `permissions` NULL means "all of the owner's";
 * a list narrows them (intersected with the owner's current ones at every use). `context_id`
 * binds the key to one context. `current_session_id` is the session the key's requests count in
 * (one use-window session, reopened after it ends).
 */
export class ApiKeys1764600000000 implements MigrationInterface {
  name = 'ApiKeys1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE api_keys (
        id text PRIMARY KEY,
        user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        name text NOT NULL,
        key_hash text NOT NULL UNIQUE,
        key_prefix text NOT NULL,
        permissions text[],
        context_id text,
        expires_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at timestamptz,
        revoked_by text,
        current_session_id text
      )`);
    await q.query(`CREATE INDEX api_keys_user_created_idx ON api_keys (user_id, created_at DESC)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE api_keys`);
  }
}
