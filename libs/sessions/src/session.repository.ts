import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { returnedRows, Transaction } from '@app/database';

export type SessionStatus = 'active' | 'terminated';
export type ConnectionType = 'http' | 'websocket';

/**
 * One client connection: a login (http), an MCP session or a WebSocket. Access tokens carry
 * its id; when it stops being active every token of it stops working.
 */
export interface Session {
  id: string;
  userId: string;
  contextId: string | null;
  status: SessionStatus;
  connectionType: ConnectionType;
  ipAddress: string | null;
  userAgent: string | null;
  startedAt: Date;
  lastActivity: Date;
  endedAt: Date | null;
  /** logout | terminated | refresh_reuse | expired | suspended | mfa_changed | ... */
  endReason: string | null;
  /** Who ended it (a user id), when it was ended by someone. */
  endedBy: string | null;
  messagesReceived: number;
  messagesSent: number;
  toolExecutions: number;
  errors: number;
}

/** A `sessions` row as the driver returns it (migration 1764100000000). */
interface SessionRow {
  id: string;
  user_id: string;
  context_id: string | null;
  status: SessionStatus;
  connection_type: ConnectionType;
  ip_address: string | null;
  user_agent: string | null;
  started_at: Date;
  last_activity: Date;
  ended_at: Date | null;
  end_reason: string | null;
  ended_by: string | null;
  messages_received: number;
  messages_sent: number;
  tool_executions: number;
  errors: number;
}

/** Every column of `sessions`, in table order. */
export const SESSION_TABLE_COLUMNS: ReadonlyArray<keyof SessionRow> = [
  'id',
  'user_id',
  'context_id',
  'status',
  'connection_type',
  'ip_address',
  'user_agent',
  'started_at',
  'last_activity',
  'ended_at',
  'end_reason',
  'ended_by',
  'messages_received',
  'messages_sent',
  'tool_executions',
  'errors',
];

const SESSION_COLUMNS = SESSION_TABLE_COLUMNS.join(', ');

const dateOrNull = (value: Date | string | null): Date | null => (value === null ? null : new Date(value));

function sessionOf(row: SessionRow): Session {
  return {
    id: row.id,
    userId: row.user_id,
    contextId: row.context_id,
    status: row.status,
    connectionType: row.connection_type,
    ipAddress: row.ip_address,
    userAgent: row.user_agent,
    startedAt: new Date(row.started_at),
    lastActivity: new Date(row.last_activity),
    endedAt: dateOrNull(row.ended_at),
    endReason: row.end_reason,
    endedBy: row.ended_by,
    messagesReceived: Number(row.messages_received),
    messagesSent: Number(row.messages_sent),
    toolExecutions: Number(row.tool_executions),
    errors: Number(row.errors),
  };
}

/** A session that an UPDATE ended. */
export interface EndedSession {
  id: string;
  userId: string;
}

/** Increments to one session's counters and its latest activity (null: only counters moved). */
export interface SessionActivityDelta {
  id: string;
  received: number;
  sent: number;
  toolExecutions: number;
  errors: number;
  lastActivity: Date | null;
}

/** Which sessions a listing shows; `liveSince`: a session idle since before it counts as ended. */
export interface SessionListFilter {
  userId?: string;
  contextId?: string;
  status?: 'active' | 'terminated';
  liveSince: Date;
  limit: number;
  offset: number;
}

/** A listed session: the row as stored, and whether it is live by the listing's cutoff. */
export type ListedSession = Session & { live: boolean };

const ENDED = `RETURNING id, user_id`;
const endedOf = (rows: Array<{ id: string; user_id: string }>): EndedSession[] => rows.map((row) => ({ id: row.id, userId: row.user_id }));

/**
 * SQL of `sessions`. Methods taking a transaction run in it; the others use a pooled connection
 * (do not call those inside a transaction: the embedded database has a single connection).
 */
@Injectable()
export class SessionRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** False once the pool is closed (late in shutdown). */
  get connected(): boolean {
    return this.dataSource.isInitialized;
  }

  async insert(tx: Transaction, session: Session): Promise<void> {
    await tx.query(
      `INSERT INTO sessions (id, user_id, context_id, status, connection_type, ip_address, user_agent, started_at, last_activity)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [
        session.id,
        session.userId,
        session.contextId,
        session.status,
        session.connectionType,
        session.ipAddress,
        session.userAgent,
        session.startedAt,
        session.lastActivity,
      ],
    );
  }

  async findById(id: string, tx?: Transaction): Promise<Session | null> {
    const [row]: SessionRow[] = await (tx ?? this.dataSource).query(`SELECT ${SESSION_COLUMNS} FROM sessions WHERE id = $1`, [id]);
    return row ? sessionOf(row) : null;
  }

  /** What the is-active check needs, read on a pooled connection. */
  async stateOf(id: string): Promise<{ userId: string; status: SessionStatus; lastActivity: Date } | null> {
    const [row]: Array<Pick<SessionRow, 'user_id' | 'status' | 'last_activity'>> = await this.dataSource.query(
      `SELECT user_id, status, last_activity FROM sessions WHERE id = $1`,
      [id],
    );
    return row ? { userId: row.user_id, status: row.status, lastActivity: new Date(row.last_activity) } : null;
  }

  /** Locks the row for the rest of the transaction; who owns it and how it ended (if it did). */
  async lockForEnding(tx: Transaction, id: string): Promise<Pick<Session, 'userId' | 'endReason' | 'endedBy'> | null> {
    const [row]: Array<Pick<SessionRow, 'user_id' | 'end_reason' | 'ended_by'>> = await tx.query(
      `SELECT user_id, end_reason, ended_by FROM sessions WHERE id = $1 FOR UPDATE`,
      [id],
    );
    return row ? { userId: row.user_id, endReason: row.end_reason, endedBy: row.ended_by } : null;
  }

  /** True when the row is active; holds a share lock on it (it cannot end meanwhile) until the transaction ends. */
  async holdActive(tx: Transaction, id: string): Promise<boolean> {
    const [row]: Array<Pick<SessionRow, 'status'>> = await tx.query(`SELECT status FROM sessions WHERE id = $1 FOR SHARE`, [id]);
    return row?.status === 'active';
  }

  /** Ends one session if it is active (in the transaction, or on its own without one). */
  async end(tx: Transaction | null, id: string, now: Date, reason: string, endedBy: string | null): Promise<EndedSession[]> {
    return endedOf(
      returnedRows(
        await (tx ?? this.dataSource).query(
          `UPDATE sessions SET status = 'terminated', ended_at = $2, end_reason = $3, ended_by = $4
           WHERE id = $1 AND status = 'active' ${ENDED}`,
          [id, now, reason, endedBy],
        ),
      ),
    );
  }

  /** Ends every active session of a user but `exceptId`. */
  async endAllForUser(
    tx: Transaction,
    userId: string,
    now: Date,
    reason: string,
    endedBy: string | null,
    exceptId: string | null,
  ): Promise<EndedSession[]> {
    return endedOf(
      returnedRows(
        await tx.query(
          `UPDATE sessions SET status = 'terminated', ended_at = $2, end_reason = $3, ended_by = $4
           WHERE user_id = $1 AND status = 'active' AND id <> $5 ${ENDED}`,
          [userId, now, reason, endedBy, exceptId ?? ''],
        ),
      ),
    );
  }

  /** Ends every active session whose last activity is older than `idleBefore`. */
  async endIdle(idleBefore: Date, now: Date, reason: string): Promise<EndedSession[]> {
    return endedOf(
      returnedRows(
        await this.dataSource.query(
          `UPDATE sessions SET status = 'terminated', ended_at = $2, end_reason = $3
           WHERE status = 'active' AND last_activity < $1 ${ENDED}`,
          [idleBefore, now, reason],
        ),
      ),
    );
  }

  /** Adds counters and moves last activity forward (never back), for many sessions in one statement. */
  async addActivity(deltas: SessionActivityDelta[]): Promise<void> {
    await this.dataSource.query(
      `UPDATE sessions AS s
          SET messages_received = s.messages_received + d.received,
              messages_sent = s.messages_sent + d.sent,
              tool_executions = s.tool_executions + d.tool_executions,
              errors = s.errors + d.errors,
              last_activity = GREATEST(s.last_activity, d.last_activity)
         FROM unnest($1::text[], $2::int[], $3::int[], $4::int[], $5::int[], $6::timestamptz[])
              AS d(id, received, sent, tool_executions, errors, last_activity)
        WHERE s.id = d.id`,
      [
        deltas.map((d) => d.id),
        deltas.map((d) => d.received),
        deltas.map((d) => d.sent),
        deltas.map((d) => d.toolExecutions),
        deltas.map((d) => d.errors),
        deltas.map((d) => (d.lastActivity ? d.lastActivity.toISOString() : null)),
      ],
    );
  }

  /** A page of sessions, newest first, and how many match in all. */
  async list(filter: SessionListFilter): Promise<{ sessions: ListedSession[]; total: number }> {
    const params: unknown[] = [];
    const where: string[] = [];
    // The cutoff parameter is added when first used: Postgres cannot type a parameter no clause mentions.
    let cutoff: string | undefined;
    const live = (): string => {
      if (!cutoff) {
        params.push(filter.liveSince);
        cutoff = `$${params.length}`;
      }
      return `(status = 'active' AND last_activity >= ${cutoff})`;
    };
    if (filter.userId !== undefined) {
      params.push(filter.userId);
      where.push(`user_id = $${params.length}`);
    }
    if (filter.contextId !== undefined) {
      params.push(filter.contextId);
      where.push(`context_id = $${params.length}`);
    }
    if (filter.status === 'active') where.push(live());
    if (filter.status === 'terminated') where.push(`NOT ${live()}`);
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';

    const [{ total }]: Array<{ total: number }> = await this.dataSource.query(`SELECT count(*)::int AS total FROM sessions ${clause}`, [
      ...params,
    ]);
    const liveColumn = live();
    const rows: Array<SessionRow & { live: boolean }> = await this.dataSource.query(
      `SELECT ${SESSION_COLUMNS}, ${liveColumn} AS live
         FROM sessions ${clause}
        ORDER BY started_at DESC, id DESC
        LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
      [...params, filter.limit, filter.offset],
    );
    return { sessions: rows.map((row) => ({ ...sessionOf(row), live: row.live })), total: Number(total) };
  }
}
