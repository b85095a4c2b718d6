import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What an MCP session needs beyond its `sessions` row so that any replica can serve it: the
 * credential that opened it (`jwt` or the API key id, which every request must match), the
 * session of that credential (ending it ends this one), and for a 2025-era Streamable HTTP
 * session the client's `initialize` params (protocol version, capabilities, client info), replayed
 * when another replica adopts the session. `handshake` is JSON kept as text: jsonb refuses some
 * strings a client may legally send (`\u0000`). Login sessions have no row here.
 */
export class McpSessions1764800000000 implements MigrationInterface {
  name = 'McpSessions1764800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE mcp_sessions (
        session_id text PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
        transport text NOT NULL,
        credential text NOT NULL,
        parent_session_id text,
        handshake text
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE mcp_sessions`);
  }
}
