import { Injectable } from '@nestjs/common';
import { AuditAction, auditEvent, AuditService, SYSTEM_ACTOR } from '@app/audit';
import { Actor, AppException, Clock, Principal } from '@app/core';
import { Transaction, UnitOfWork } from '@app/database';
import { SessionService } from '@app/sessions';
import { OAuthStoreRepository } from '../store/oauth-store.repository';
import { OAuthGrantRecord, OAuthGrantRepository } from './oauth-grant.repository';

/** Why a grant's gateway session ended. */
export const OAUTH_GRANT_REVOKED = 'oauth_grant_revoked';

export interface ConsentInput {
  grantId: string;
  userId: string;
  clientId: string;
  clientName: string | null;
  scopes: string[];
  resources: string[];
}

/** A grant as GET /auth/oauth/grants lists it. */
export interface OAuthGrantView {
  id: string;
  clientId: string;
  clientName: string | null;
  scopes: string[];
  resources: string[];
  sessionId: string;
  status: 'active' | 'revoked' | 'ended';
  createdAt: string;
  updatedAt: string;
}

/**
 * The grants users consent to. Each grant has a gateway session (a `sessions` row: listed by
 * GET /sessions, ended by POST /sessions/{id}/terminate): our access tokens name it (`sid`), the
 * Authenticator checks it on every request and the provider checks it before a refresh, so
 * ending it ends the grant's tokens at once. A consent is remembered per user and client while
 * its grant is unrevoked and its session active.
 */
@Injectable()
export class OAuthGrantsService {
  constructor(
    private readonly unitOfWork: UnitOfWork,
    private readonly grants: OAuthGrantRepository,
    private readonly store: OAuthStoreRepository,
    private readonly sessions: SessionService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  /** Records a consent: a new grant with its new gateway session, or a remembered one widened. */
  async recordConsent(input: ConsentInput, client: Actor): Promise<void> {
    await this.unitOfWork.run(async (tx) => {
      const now = this.clock.now();
      const known = await this.grants.find(input.grantId, tx);
      let sessionId: string;
      if (known) {
        sessionId = known.sessionId;
        const scopes = [...new Set([...known.scopes, ...input.scopes])];
        const resources = [...new Set([...known.resources, ...input.resources])];
        await this.grants.widen(tx, input.grantId, scopes, resources, now);
      } else {
        const session = await this.sessions.open(tx, {
          userId: input.userId,
          connectionType: 'http',
          ipAddress: client.ipAddress,
          userAgent: client.userAgent,
        });
        sessionId = session.id;
        await this.grants.insert(tx, { ...input, sessionId, now });
      }
      await this.audit.record(
        tx,
        auditEvent(AuditAction.OAUTH_GRANT, client, {
          userId: input.userId,
          resource: `oauth_grant:${input.grantId}`,
          details: { clientId: input.clientId, scopes: input.scopes, resources: input.resources, sessionId, remembered: Boolean(known) },
        }),
      );
    });
  }

  /** A consent refused on the page (nothing changes but the audit log). */
  async recordDenial(userId: string, clientId: string, client: Actor): Promise<void> {
    await this.audit.recordStandalone(
      auditEvent(AuditAction.OAUTH_CONSENT_DENIED, client, { userId, resource: `oauth_client:${clientId}`, result: 'failure' }),
    );
  }

  find(grantId: string): Promise<OAuthGrantRecord | null> {
    return this.grants.find(grantId);
  }

  /** The grant id to reuse for this user and client (remembered consent), if any. */
  async remembered(userId: string, clientId: string): Promise<string | undefined> {
    const grant = await this.grants.findRemembered(userId, clientId);
    if (!grant || !(await this.sessions.isActive(grant.sessionId))) return undefined;
    return grant.grantId;
  }

  /** The gateway session of a usable grant (unrevoked, session active), else null. */
  async activeSessionOf(grantId: string): Promise<string | null> {
    const grant = await this.grants.find(grantId);
    if (!grant || grant.revokedAt) return null;
    return (await this.sessions.isActive(grant.sessionId)) ? grant.sessionId : null;
  }

  async list(principal: Principal): Promise<OAuthGrantView[]> {
    return (await this.grants.listForUser(principal.userId)).map(viewOf);
  }

  /**
   * Revokes a grant: its user's own (DELETE /auth/oauth/grants/{id}), or anyone's for an
   * administrator (DELETE /admin/oauth/grants/{id}). Its codes and refresh tokens are deleted and
   * its session ends: its access tokens are refused from the next request on.
   */
  async revoke(principal: Principal, grantId: string, client: Actor, asAdmin = false): Promise<void> {
    const grant = await this.grants.find(grantId);
    if (!grant || (!asAdmin && grant.userId !== principal.userId)) throw AppException.notFound('OAuth grant not found');
    await this.unitOfWork.run(async (tx) => {
      await this.store.destroyByGrant(grantId, undefined, tx);
      await this.endGrant(tx, grant, principal.userId, client, asAdmin ? 'admin' : 'user');
    });
  }

  /**
   * The provider destroyed a grant (token revocation, a refresh token presented twice, a code
   * replayed): the gateway session ends in the transaction that deletes the grant's artefacts,
   * before the library's answer leaves.
   */
  async grantDestroyed(grantId: string, tx: Transaction): Promise<void> {
    const grant = await this.grants.find(grantId, tx);
    if (!grant) return;
    await this.endGrant(tx, grant, null, SYSTEM_ACTOR, 'provider');
  }

  private async endGrant(
    tx: Transaction,
    grant: OAuthGrantRecord,
    endedBy: string | null,
    client: Parameters<typeof auditEvent>[1],
    by: 'user' | 'admin' | 'provider',
  ): Promise<void> {
    const revoked = await this.grants.markRevoked(tx, grant.grantId, this.clock.now());
    if (revoked) {
      // The record goes first: ending the session denies it at once (before the commit), so an
      // audit write that fails must fail before that, leaving the grant and its tokens as they were.
      const active = await this.sessions.holdActive(tx, grant.sessionId);
      await this.audit.record(
        tx,
        auditEvent(AuditAction.OAUTH_GRANT_REVOKED, client, {
          userId: grant.userId,
          resource: `oauth_grant:${grant.grantId}`,
          details: { clientId: grant.clientId, sessionId: grant.sessionId, sessionEnded: active, by },
        }),
      );
    }
    await this.sessions.end(tx, grant.sessionId, OAUTH_GRANT_REVOKED, endedBy);
  }
}

function viewOf(grant: OAuthGrantRecord): OAuthGrantView {
  return {
    id: grant.grantId,
    clientId: grant.clientId,
    clientName: grant.clientName,
    scopes: grant.scopes,
    resources: grant.resources,
    sessionId: grant.sessionId,
    status: grant.revokedAt ? 'revoked' : grant.sessionStatus === 'active' ? 'active' : 'ended',
    createdAt: grant.createdAt.toISOString(),
    updatedAt: grant.updatedAt.toISOString(),
  };
}
