import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig, AppException, Clock, pageOffset, paginationOf, Permission, Principal } from '@app/core';
import { ListSessionsQueryDto } from './dto/list-sessions-query.dto';
import { SessionListDto } from './dto/session-list.dto';
import { SessionDto } from './dto/session.dto';
import { SessionActivityService } from './session-activity.service';
import { ConnectionType } from './session.entity';

interface SessionRow {
  id: string;
  user_id: string;
  context_id: string | null;
  live: boolean;
  connection_type: ConnectionType;
  ip_address: string | null;
  user_agent: string | null;
  started_at: Date;
  last_activity: Date;
  messages_received: number;
  messages_sent: number;
  tool_executions: number;
  errors: number;
}

/**
 * Sessions as the API shows them: the caller's own, or everyone's for a holder of
 * admin:sessions:read; a key bound to a context sees only that context's sessions. With live
 * counters (the row plus what this process has not written yet).
 */
@Injectable()
export class SessionQueryService {
  private readonly idleMs: number;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly activity: SessionActivityService,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.idleMs = config.auth.sessionIdleTimeoutSec * 1000;
  }

  async list(principal: Principal, query: ListSessionsQueryDto): Promise<SessionListDto> {
    const admin = principal.permissions.includes(Permission.ADMIN_SESSIONS_READ);
    if (!admin && query.userId !== undefined && query.userId !== principal.userId) {
      throw AppException.forbidden("Only administrators may list other users' sessions");
    }
    const userId = admin ? query.userId : principal.userId;
    const params: unknown[] = [];
    const where: string[] = [];
    // A session idle past the timeout is over even before the sweep marks it so. The cutoff
    // parameter is added when first used: Postgres cannot type a parameter no clause mentions.
    let cutoff: string | undefined;
    const live = (): string => {
      if (!cutoff) {
        params.push(new Date(this.clock.nowMs() - this.idleMs));
        cutoff = `$${params.length}`;
      }
      return `(status = 'active' AND last_activity >= ${cutoff})`;
    };
    if (userId !== undefined) {
      params.push(userId);
      where.push(`user_id = $${params.length}`);
    }
    if (principal.contextId !== undefined) {
      params.push(principal.contextId);
      where.push(`context_id = $${params.length}`);
    }
    if (query.status === 'active') where.push(live());
    if (query.status === 'terminated') where.push(`NOT ${live()}`);
    const filter = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';

    const [{ total }]: Array<{ total: number }> = await this.dataSource.query(
      `SELECT count(*)::int AS total FROM sessions ${filter}`,
      [...params],
    );
    const liveColumn = live();
    const rows: SessionRow[] = await this.dataSource.query(
      `SELECT id, user_id, context_id, ${liveColumn} AS live, connection_type, ip_address, user_agent, started_at, last_activity,
              messages_received, messages_sent, tool_executions, errors
         FROM sessions ${filter}
        ORDER BY started_at DESC, id DESC
        LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
      [...params, query.limit, pageOffset(query)],
    );
    return { sessions: rows.map((row) => this.toDto(row)), pagination: paginationOf(query, Number(total)) };
  }

  private toDto(row: SessionRow): SessionDto {
    const pending = this.activity.pending(row.id);
    const lastActivityMs = Math.max(new Date(row.last_activity).getTime(), pending?.lastActivityMs ?? 0);
    return {
      id: row.id,
      userId: row.user_id,
      contextId: row.context_id,
      status: row.live ? 'active' : 'terminated',
      connectionType: row.connection_type,
      ipAddress: row.ip_address,
      userAgent: row.user_agent,
      startedAt: new Date(row.started_at).toISOString(),
      lastActivity: new Date(lastActivityMs).toISOString(),
      metrics: {
        messagesReceived: Number(row.messages_received) + (pending?.received ?? 0),
        messagesSent: Number(row.messages_sent) + (pending?.sent ?? 0),
        toolExecutions: Number(row.tool_executions) + (pending?.toolExecutions ?? 0),
        errors: Number(row.errors) + (pending?.errors ?? 0),
      },
    };
  }
}
