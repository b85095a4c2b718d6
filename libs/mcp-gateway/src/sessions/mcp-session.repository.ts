import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import type { ConnectionType } from '@app/sessions';

/** The client's `initialize` of a 2025-era session, as it asked (replayed when a replica adopts it). */
export interface McpHandshake {
  protocolVersion: string;
  capabilities: unknown;
  clientInfo: unknown;
}

export interface NewMcpSession {
  sessionId: string;
  transport: string;
  credential: string;
  parentSessionId: string | null;
  handshake?: McpHandshake;
}

/** An MCP session as the database knows it: enough to check its caller and rebuild it anywhere. */
export interface StoredMcpSession {
  sessionId: string;
  kind: ConnectionType;
  transport: string;
  userId: string;
  contextId: string | null;
  active: boolean;
  credential: string;
  parentSessionId: string | null;
  /** False when the credential's own session has ended (then this one must end too). */
  parentActive: boolean;
  handshake: McpHandshake | null;
}

/** Every column of `mcp_sessions`, in insert order. */
export const MCP_SESSIONS_COLUMNS = ['session_id', 'transport', 'credential', 'parent_session_id', 'handshake'] as const;

/** An `mcp_sessions` row joined with its `sessions` row and its parent's status. */
interface StoredRow {
  session_id: string;
  connection_type: ConnectionType;
  transport: string;
  user_id: string;
  context_id: string | null;
  status: string;
  credential: string;
  parent_session_id: string | null;
  parent_status: string | null;
  handshake: string | null;
}

/**
 * The repository of `mcp_sessions`: the rows beside the `sessions` rows of MCP connections. Reads
 * join `sessions` (the caller's state); the insert takes the transaction that opens the session row.
 */
@Injectable()
export class McpSessionRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Inside the transaction that opens the session row. */
  async insert(manager: EntityManager, session: NewMcpSession): Promise<void> {
    const { handshake } = session;
    await manager.query(`INSERT INTO mcp_sessions (${MCP_SESSIONS_COLUMNS.join(', ')}) VALUES ($1, $2, $3, $4, $5)`, [
      session.sessionId,
      session.transport,
      session.credential,
      session.parentSessionId,
      handshake ? JSON.stringify(handshake) : null,
    ]);
  }

  /** The session with its parent's state, or undefined when it is not an MCP session. */
  async find(sessionId: string): Promise<StoredMcpSession | undefined> {
    const rows: StoredRow[] = await this.dataSource.query(
      `SELECT s.id AS session_id, s.connection_type, s.user_id, s.context_id, s.status,
              m.transport, m.credential, m.parent_session_id, p.status AS parent_status,
              m.handshake
         FROM sessions s
         JOIN mcp_sessions m ON m.session_id = s.id
         LEFT JOIN sessions p ON p.id = m.parent_session_id
        WHERE s.id = $1`,
      [sessionId],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      sessionId: row.session_id,
      kind: row.connection_type,
      transport: row.transport,
      userId: row.user_id,
      contextId: row.context_id,
      active: row.status === 'active',
      credential: row.credential,
      parentSessionId: row.parent_session_id,
      // A parent row that is gone entirely counts as ended.
      parentActive: row.parent_session_id === null || row.parent_status === 'active',
      handshake: row.handshake === null ? null : (JSON.parse(row.handshake) as McpHandshake),
    };
  }

  /** Which of these sessions are no longer active (ended anywhere, or their rows gone). */
  async inactiveAmong(sessionIds: string[]): Promise<string[]> {
    if (sessionIds.length === 0) return [];
    const rows: Array<{ id: string }> = await this.dataSource.query(`SELECT id FROM sessions WHERE id = ANY($1) AND status = 'active'`, [
      sessionIds,
    ]);
    const active = new Set(rows.map((row) => row.id));
    return sessionIds.filter((id) => !active.has(id));
  }
}
