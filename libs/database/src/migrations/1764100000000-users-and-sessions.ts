import { MigrationInterface, QueryRunner } from 'typeorm';

export class UsersAndSessions1764100000000 implements MigrationInterface {
  name = 'UsersAndSessions1764100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE users (
        id text PRIMARY KEY,
        email text NOT NULL,
        name text NOT NULL,
        organization text,
        phone text,
        password_hash text NOT NULL,
        roles text[] NOT NULL DEFAULT '{user}',
        permissions text[] NOT NULL DEFAULT '{}',
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
        mfa_enabled boolean NOT NULL DEFAULT false,
        last_login timestamptz,
        failed_logins integer NOT NULL DEFAULT 0,
        failed_window_start timestamptz,
        locked_until timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT users_email_lower CHECK (email = lower(email))
      )`);
    await q.query(`CREATE UNIQUE INDEX users_email_key ON users (email)`);
    await q.query(`CREATE INDEX users_roles_idx ON users USING gin (roles)`);
    await q.query(`
      CREATE TABLE sessions (
        id text PRIMARY KEY,
        user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        context_id text,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'terminated')),
        connection_type text NOT NULL DEFAULT 'http' CHECK (connection_type IN ('http', 'websocket')),
        ip_address text,
        user_agent text,
        started_at timestamptz NOT NULL DEFAULT now(),
        last_activity timestamptz NOT NULL DEFAULT now(),
        ended_at timestamptz,
        end_reason text,
        ended_by text,
        messages_received integer NOT NULL DEFAULT 0,
        messages_sent integer NOT NULL DEFAULT 0,
        tool_executions integer NOT NULL DEFAULT 0,
        errors integer NOT NULL DEFAULT 0
      )`);
    await q.query(`CREATE INDEX sessions_user_idx ON sessions (user_id, started_at DESC)`);
    await q.query(`CREATE INDEX sessions_active_idx ON sessions (last_activity) WHERE status = 'active'`);
    await q.query(`
      CREATE TABLE refresh_tokens (
        id text PRIMARY KEY,
        session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        token_hash text NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE UNIQUE INDEX refresh_tokens_hash_key ON refresh_tokens (token_hash)`);
    await q.query(`CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE refresh_tokens`);
    await q.query(`DROP TABLE sessions`);
    await q.query(`DROP TABLE users`);
  }
}
