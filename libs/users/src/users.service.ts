import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { AppConfig, AppException, newId, Role } from '@app/core';
import { returnedRows } from '@app/database';
import { UserEntity, UserStatus } from './user.entity';
import { UserAccessState, UserStateCache } from './user-state.cache';

export interface NewUser {
  email: string;
  name: string;
  passwordHash: string;
  organization?: string | null;
  phone?: string | null;
  roles?: Role[];
  now: Date;
}

export interface UserListFilter {
  role?: Role;
  status?: UserStatus;
  /** Case-insensitive substring of email or name. */
  search?: string;
  offset: number;
  limit: number;
}

/** A login candidate: the account plus the columns login needs and nobody else may read. */
export type LoginCandidate = UserEntity & { passwordHash: string };

export interface LockoutPolicy {
  threshold: number;
  windowSec: number;
  durationSec: number;
}

/** The login lockout as configured: wrong passwords at login and at a password change both count. */
export function lockoutPolicyOf(config: AppConfig): LockoutPolicy {
  return {
    threshold: config.auth.lockoutThreshold,
    windowSec: config.auth.lockoutWindowSec,
    durationSec: config.auth.lockoutDurationSec,
  };
}

const UNIQUE_VIOLATION = '23505';

function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; driverError?: { code?: string } };
  return e.code === UNIQUE_VIOLATION || e.driverError?.code === UNIQUE_VIOLATION;
}

/** Escapes LIKE wildcards so a search for "a_b%" means exactly that text. */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

@Injectable()
export class UsersService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly stateCache: UserStateCache,
  ) {}

  /** Emails are stored and compared lower-cased (and trimmed), so uniqueness is case-insensitive. */
  static normalizeEmail(email: string): string {
    return email.trim().toLowerCase();
  }

  async findById(id: string, manager: EntityManager = this.dataSource.manager): Promise<UserEntity | null> {
    return manager.findOneBy(UserEntity, { id });
  }

  async findByEmail(email: string, manager: EntityManager = this.dataSource.manager): Promise<UserEntity | null> {
    return manager.findOneBy(UserEntity, { email: UsersService.normalizeEmail(email) });
  }

  /** The account with its password hash, for verifying a login. */
  async findLoginCandidate(email: string): Promise<LoginCandidate | null> {
    const user = await this.dataSource.manager
      .createQueryBuilder(UserEntity, 'u')
      .addSelect('u.passwordHash')
      .where('u.email = :email', { email: UsersService.normalizeEmail(email) })
      .getOne();
    return (user as LoginCandidate | null) ?? null;
  }

  /** Inserts an account (inside the caller's transaction); a taken email, in any letter case, is a 409. */
  async create(manager: EntityManager, input: NewUser): Promise<UserEntity> {
    const user = Object.assign(new UserEntity(), {
      id: newId('usr'),
      email: UsersService.normalizeEmail(input.email),
      name: input.name.trim(),
      organization: input.organization ?? null,
      phone: input.phone ?? null,
      roles: input.roles ?? ['user'],
      permissions: [],
      status: 'active',
      mfaEnabled: false,
      lastLogin: null,
      failedLogins: 0,
      failedWindowStart: null,
      lockedUntil: null,
      createdAt: input.now,
      updatedAt: input.now,
    } satisfies Omit<UserEntity, 'passwordHash'>);
    try {
      await manager.query(
        `INSERT INTO users (id, email, name, organization, phone, password_hash, roles, permissions, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)`,
        [user.id, user.email, user.name, user.organization, user.phone, input.passwordHash, user.roles, user.permissions, user.status, input.now],
      );
    } catch (error) {
      // The transaction is aborted either way; the caller's rollback discards it.
      if (isUniqueViolation(error)) throw AppException.conflict('An account with this email already exists');
      throw error;
    }
    return user;
  }

  /**
   * Counts a failed login atomically (concurrent failures serialise on the row lock) and locks
   * the account once the threshold is reached within the window. Returns the lock's end when
   * this failure caused a lock.
   */
  async registerFailedLogin(manager: EntityManager, userId: string, now: Date, policy: LockoutPolicy): Promise<Date | null> {
    const windowStart = new Date(now.getTime() - policy.windowSec * 1000);
    const rows = returnedRows<{ failed_logins: number }>(
      await manager.query(
      `UPDATE users SET
         failed_logins = CASE WHEN failed_window_start IS NULL OR failed_window_start <= $2 THEN 1 ELSE failed_logins + 1 END,
         failed_window_start = CASE WHEN failed_window_start IS NULL OR failed_window_start <= $2 THEN $3 ELSE failed_window_start END
       WHERE id = $1
       RETURNING failed_logins`,
        [userId, windowStart, now],
      ),
    );
    const failures = rows[0]?.failed_logins ?? 0;
    if (failures < policy.threshold) return null;
    const lockedUntil = new Date(now.getTime() + policy.durationSec * 1000);
    // The count starts afresh after the lock, so an unlocked account gets the full allowance again.
    await manager.query(
      `UPDATE users SET locked_until = $2, failed_logins = 0, failed_window_start = NULL WHERE id = $1`,
      [userId, lockedUntil],
    );
    return lockedUntil;
  }

  /** The stored password hash of an account (for re-authentication), or null when there is none. */
  async passwordHashOf(id: string, manager: EntityManager = this.dataSource.manager): Promise<string | null> {
    const rows: Array<{ password_hash: string }> = await manager.query(`SELECT password_hash FROM users WHERE id = $1`, [id]);
    return rows[0]?.password_hash ?? null;
  }

  /**
   * Replaces the password hash if it is still `expectedHash` (the one the current password was
   * checked against), so of two concurrent changes only the first wins. Clears the failure count:
   * the caller has just proved the password. Returns false when the hash had changed meanwhile.
   */
  async replacePasswordHash(manager: EntityManager, id: string, expectedHash: string, newHash: string, now: Date): Promise<boolean> {
    const rows = returnedRows<{ id: string }>(
      await manager.query(
        `UPDATE users SET password_hash = $3, failed_logins = 0, failed_window_start = NULL, updated_at = $4
         WHERE id = $1 AND password_hash = $2 RETURNING id`,
        [id, expectedHash, newHash, now],
      ),
    );
    return rows.length === 1;
  }

  /** A successful login: forget earlier failures and note the time. */
  async registerSuccessfulLogin(manager: EntityManager, userId: string, now: Date): Promise<void> {
    await manager.query(
      `UPDATE users SET failed_logins = 0, failed_window_start = NULL, locked_until = NULL, last_login = $2 WHERE id = $1`,
      [userId, now],
    );
  }

  async list(filter: UserListFilter): Promise<{ users: UserEntity[]; total: number }> {
    const query = this.dataSource.manager.createQueryBuilder(UserEntity, 'u');
    if (filter.role) query.andWhere(':role = ANY(u.roles)', { role: filter.role });
    if (filter.status) query.andWhere('u.status = :status', { status: filter.status });
    if (filter.search) {
      query.andWhere(`(u.email ILIKE :pattern ESCAPE '\\' OR u.name ILIKE :pattern ESCAPE '\\')`, {
        pattern: likePattern(filter.search.trim()),
      });
    }
    const [users, total] = await query
      .orderBy('u.createdAt', 'DESC')
      .addOrderBy('u.id', 'ASC')
      .skip(filter.offset)
      .take(filter.limit)
      .getManyAndCount();
    return { users, total };
  }

  /** Locks the row for the rest of the caller's transaction and returns it. */
  async lockById(manager: EntityManager, id: string): Promise<UserEntity | null> {
    return manager
      .createQueryBuilder(UserEntity, 'u')
      .setLock('pessimistic_write')
      .where('u.id = :id', { id })
      .getOne();
  }

  /**
   * Ids of the active administrators, locked until the caller's transaction ends, so two
   * concurrent demotions cannot both see "another admin remains".
   */
  async lockActiveAdminIds(manager: EntityManager): Promise<string[]> {
    const rows: Array<{ id: string }> = await manager.query(
      `SELECT id FROM users WHERE 'admin' = ANY(roles) AND status = 'active' ORDER BY id FOR UPDATE`,
    );
    return rows.map((row) => row.id);
  }

  async updateAccess(manager: EntityManager, id: string, roles: Role[], permissions: string[], now: Date): Promise<void> {
    await manager.query(`UPDATE users SET roles = $2, permissions = $3, updated_at = $4 WHERE id = $1`, [id, roles, permissions, now]);
  }

  async updateStatus(manager: EntityManager, id: string, status: UserStatus, now: Date): Promise<void> {
    await manager.query(`UPDATE users SET status = $2, updated_at = $3 WHERE id = $1`, [id, status, now]);
  }

  /** The state every authenticated request checks (cached; see UserStateCache). */
  async accessState(userId: string): Promise<UserAccessState | null> {
    const cached = this.stateCache.get(userId);
    if (cached) return cached;
    const generation = this.stateCache.generation(userId);
    // Plain SQL: while Redis is away every request comes here, so the read must stay cheap.
    const rows: UserAccessState[] = await this.dataSource.query(`SELECT id, email, status, roles, permissions FROM users WHERE id = $1`, [userId]);
    const user = rows[0];
    if (!user) return null;
    const state: UserAccessState = {
      id: user.id,
      email: user.email,
      status: user.status,
      roles: [...user.roles],
      permissions: [...user.permissions],
    };
    this.stateCache.set(userId, state, generation);
    return state;
  }

  /**
   * Call after committing any change to a user's roles, permissions, status or email, so the
   * next request sees it.
   */
  async invalidate(userId: string): Promise<void> {
    await this.stateCache.invalidate(userId);
  }
}
