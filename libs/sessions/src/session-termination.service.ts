import { Injectable } from '@nestjs/common';
import { AuditAction, AuditService } from '@app/audit';
import { Actor, AppException, Clock, Permission, Principal } from '@app/core';
import { UnitOfWork } from '@app/database';
import { TerminateSessionResponseDto } from './dto/terminate-session-response.dto';
import { SessionRepository } from './session.repository';
import { SessionService } from './session.service';
import { SessionTerminationNotifier } from './session-termination.notifier';

/** End reason of sessions terminated through the API (by their owner or an administrator). */
export const SESSION_TERMINATED = 'terminated';

/**
 * POST /sessions/{id}/terminate, with a user login only (the route refuses API keys). The
 * session's owner, or a holder of admin:sessions:write; to anyone else the session does not exist (404). Idempotent: a session
 * that already ended answers 200 again, without a second audit record.
 */
@Injectable()
export class SessionTerminationService {
  constructor(
    private readonly unitOfWork: UnitOfWork,
    private readonly repository: SessionRepository,
    private readonly sessions: SessionService,
    private readonly notifier: SessionTerminationNotifier,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  async terminate(actor: Principal, sessionId: string, client: Actor): Promise<TerminateSessionResponseDto> {
    const outcome = await this.unitOfWork.run(async (tx) => {
      const row = await this.repository.lockForEnding(tx, sessionId);
      if (!row || !mayTerminate(actor, row.userId)) throw AppException.notFound('Session not found');
      const ended = await this.sessions.end(tx, sessionId, SESSION_TERMINATED, actor.userId);
      if (ended) {
        const byOther = row.userId !== actor.userId;
        await this.audit.record(tx, {
          action: AuditAction.SESSION_TERMINATE,
          userId: actor.userId,
          resource: `session:${sessionId}`,
          result: 'success',
          severity: byOther ? 'warning' : 'info',
          ipAddress: client.ipAddress,
          userAgent: client.userAgent,
          details: { ownerId: row.userId, endedBy: actor.userId, byAdministrator: byOther },
        });
      }
      return { ended, ownerId: row.userId, reason: row.endReason ?? SESSION_TERMINATED, endedBy: row.endedBy };
    });
    if (!outcome.ended) {
      // Announce again: a connection that outlived the first ending (another replica ended it,
      // a listener failed) is closed now.
      this.notifier.notify(null, [{ sessionId, userId: outcome.ownerId, reason: outcome.reason, endedBy: outcome.endedBy }]);
    }
    return {
      message: outcome.ended ? 'Session terminated' : 'Session was already terminated',
      sessionId,
      timestamp: this.clock.now().toISOString(),
    };
  }
}

function mayTerminate(actor: Principal, ownerId: string): boolean {
  if (actor.userId === ownerId) return true;
  return actor.permissions.includes(Permission.ADMIN_SESSIONS_WRITE);
}
