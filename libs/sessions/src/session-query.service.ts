import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig, AppException, Clock, pageOffset, paginationOf, Permission, Principal } from '@app/core';
import { ListSessionsQueryDto } from './dto/list-sessions-query.dto';
import { SessionListDto } from './dto/session-list.dto';
import { SessionDto } from './dto/session.dto';
import { SessionActivityService } from './session-activity.service';
import { ListedSession, SessionRepository } from './session.repository';

/**
 * Sessions as the API shows them: the caller's own, or everyone's for a holder of
 * admin:sessions:read; a key bound to a context sees only that context's sessions. With live
 * counters (the row plus what this process has not written yet).
 */
@Injectable()
export class SessionQueryService {
  private readonly idleMs: number;

  constructor(
    private readonly repository: SessionRepository,
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
    const { sessions, total } = await this.repository.list({
      userId: admin ? query.userId : principal.userId,
      contextId: principal.contextId,
      status: query.status,
      // A session idle past the timeout is over even before the sweep marks it so.
      liveSince: new Date(this.clock.nowMs() - this.idleMs),
      limit: query.limit,
      offset: pageOffset(query),
    });
    return { sessions: sessions.map((session) => this.toDto(session)), pagination: paginationOf(query, total) };
  }

  private toDto(session: ListedSession): SessionDto {
    const pending = this.activity.pending(session.id);
    const lastActivityMs = Math.max(session.lastActivity.getTime(), pending?.lastActivityMs ?? 0);
    return {
      id: session.id,
      userId: session.userId,
      contextId: session.contextId,
      status: session.live ? 'active' : 'terminated',
      connectionType: session.connectionType,
      ipAddress: session.ipAddress,
      userAgent: session.userAgent,
      startedAt: session.startedAt.toISOString(),
      lastActivity: new Date(lastActivityMs).toISOString(),
      metrics: {
        messagesReceived: session.messagesReceived + (pending?.received ?? 0),
        messagesSent: session.messagesSent + (pending?.sent ?? 0),
        toolExecutions: session.toolExecutions + (pending?.toolExecutions ?? 0),
        errors: session.errors + (pending?.errors ?? 0),
      },
    };
  }
}
