import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AuditAction, auditEvent, AuditService } from '@app/audit';
import { MfaErrorCode, MfaService } from '@app/auth';
import { Actor, AppException, Clock, ErrorCode, pageOffset, paginationOf, Principal, Role } from '@app/core';
import { SessionService } from '@app/sessions';
import { User, UserDto, UsersService } from '@app/users';
import { ListUsersQueryDto } from './dto/list-users-query.dto';
import { MfaResetResponseDto } from './dto/mfa-reset-response.dto';
import { UpdateRolesDto } from './dto/update-roles.dto';
import { UserListDto } from './dto/user-list.dto';
import { UnitOfWork } from '@app/database';

/** Session end reason when an admin suspends the user. */
export const SUSPENDED_SESSION_REASON = 'suspended';
/** Session end reason when an admin resets the user's MFA. */
export const MFA_RESET_SESSION_REASON = 'mfa_reset';

/**
 * What administrators do to accounts. Each change locks the active admins' rows first (one
 * lock order for every such transaction), so "is another active admin left?" cannot be
 * answered "yes" to two concurrent demotions at once.
 */
@Injectable()
export class AdminUsersService {
  constructor(
    private readonly unitOfWork: UnitOfWork,
    private readonly users: UsersService,
    private readonly sessions: SessionService,
    private readonly mfa: MfaService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  async list(query: ListUsersQueryDto): Promise<UserListDto> {
    const { users, total } = await this.users.list({
      role: query.role,
      status: query.status,
      search: query.search?.trim() || undefined,
      offset: pageOffset(query),
      limit: query.limit,
    });
    return { users: users.map((user) => UserDto.from(user)), pagination: paginationOf(query, total) };
  }

  async updateRoles(actor: Principal, userId: string, dto: UpdateRolesDto, client: Actor): Promise<UserDto> {
    const updated = await this.unitOfWork.run(async (manager) => {
      const { user, otherActiveAdmins } = await this.lockTarget(manager, userId);
      const roles = [...new Set(dto.roles)] as Role[];
      const permissions = dto.permissions ? [...new Set(dto.permissions)].sort() : user.permissions;
      if (isActiveAdmin(user) && !roles.includes('admin') && otherActiveAdmins === 0) throw lastAdmin('lose the admin role');
      const now = this.clock.now();
      await this.users.updateAccess(manager, user.id, roles, permissions, now);
      await this.audit.record(
        manager,
        auditEvent(AuditAction.ADMIN_USER_ROLES_CHANGED, client, {
          userId: actor.userId,
          resource: `user:${user.id}`,
          details: { before: { roles: user.roles, permissions: user.permissions }, after: { roles, permissions } },
        }),
      );
      return Object.assign(user, { roles, permissions, updatedAt: now });
    });
    await this.users.invalidate(userId);
    return UserDto.from(updated);
  }

  /** Suspends an active user and ends every one of their sessions in the same transaction. */
  async suspend(actor: Principal, userId: string, client: Actor): Promise<UserDto> {
    if (userId === actor.userId) {
      throw AppException.conflict('Administrators cannot suspend themselves', ErrorCode.INVALID_USER_STATUS);
    }
    const updated = await this.unitOfWork.run(async (manager) => {
      const { user, otherActiveAdmins } = await this.lockTarget(manager, userId);
      if (user.status !== 'active') throw invalidStatus(`Only active users can be suspended (this one is ${user.status})`);
      if (isActiveAdmin(user) && otherActiveAdmins === 0) throw lastAdmin('be suspended');
      const now = this.clock.now();
      await this.users.updateStatus(manager, user.id, 'suspended', now);
      const sessionsEnded = await this.sessions.endAllForUser(manager, user.id, SUSPENDED_SESSION_REASON, { endedBy: actor.userId });
      await this.audit.record(
        manager,
        auditEvent(AuditAction.ADMIN_USER_SUSPENDED, client, {
          userId: actor.userId,
          resource: `user:${user.id}`,
          severity: 'warning',
          details: { sessionsEnded },
        }),
      );
      return Object.assign(user, { status: 'suspended' as const, updatedAt: now });
    });
    await this.users.invalidate(userId);
    return UserDto.from(updated);
  }

  async reactivate(actor: Principal, userId: string, client: Actor): Promise<UserDto> {
    const updated = await this.unitOfWork.run(async (manager) => {
      const { user } = await this.lockTarget(manager, userId);
      if (user.status !== 'suspended') throw invalidStatus(`Only suspended users can be reactivated (this one is ${user.status})`);
      const now = this.clock.now();
      await this.users.updateStatus(manager, user.id, 'active', now);
      await this.audit.record(
        manager,
        auditEvent(AuditAction.ADMIN_USER_REACTIVATED, client, { userId: actor.userId, resource: `user:${user.id}` }),
      );
      return Object.assign(user, { status: 'active' as const, updatedAt: now });
    });
    await this.users.invalidate(userId);
    return UserDto.from(updated);
  }

  /**
   * Removes a user's second factor (active or pending), backup codes and SMS codes, and ends every
   * one of their sessions: the reset is for a lost factor or one that may be in other hands, so
   * whoever is signed in must prove the password again and the user enrolls afresh. Critical in
   * the audit log. Not for oneself (a stolen admin token must not strip the admin's own factor:
   * replacing one's own needs a current code) and not with an API key.
   */
  async resetMfa(actor: Principal, userId: string, client: Actor): Promise<MfaResetResponseDto> {
    if (userId === actor.userId) {
      throw AppException.conflict('Administrators cannot reset their own MFA; replace it with POST /auth/mfa/enable and a current code');
    }
    const outcome = await this.unitOfWork.run(async (manager) => {
      const { user } = await this.lockTarget(manager, userId);
      const removed = await this.mfa.reset(manager, user.id);
      if (!removed) return null;
      const now = this.clock.now();
      const sessionsEnded = await this.sessions.endAllForUser(manager, user.id, MFA_RESET_SESSION_REASON, { endedBy: actor.userId });
      await this.audit.record(
        manager,
        auditEvent(AuditAction.ADMIN_USER_MFA_RESET, client, {
          userId: actor.userId,
          resource: `user:${user.id}`,
          severity: 'critical',
          details: { removedType: removed.type, removedPendingType: removed.pendingType, sessionsEnded },
        }),
      );
      return { user: UserDto.from(Object.assign(user, { mfaEnabled: false, updatedAt: now })), sessionsEnded };
    });
    if (!outcome) throw AppException.conflict('The user has no MFA factor or enrollment to reset', MfaErrorCode.MFA_NOT_ENABLED);
    await this.users.invalidate(userId);
    return outcome;
  }

  private async lockTarget(manager: EntityManager, userId: string): Promise<{ user: User; otherActiveAdmins: number }> {
    const admins = await this.users.lockActiveAdminIds(manager);
    const user = await this.users.lockById(manager, userId);
    if (!user) throw AppException.notFound('User not found');
    return { user, otherActiveAdmins: admins.filter((id) => id !== userId).length };
  }
}

function isActiveAdmin(user: User): boolean {
  return user.status === 'active' && user.roles.includes('admin');
}

function lastAdmin(what: string): AppException {
  return AppException.conflict(`The last active administrator cannot ${what}`, ErrorCode.LAST_ADMIN);
}

function invalidStatus(message: string): AppException {
  return AppException.conflict(message, ErrorCode.INVALID_USER_STATUS);
}
