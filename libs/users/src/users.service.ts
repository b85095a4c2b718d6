import { Injectable } from '@nestjs/common';
import { AppConfig, AppException, newId, Role } from '@app/core';
import type { Transaction } from '@app/database';
import { LoginCandidate, User, UserListFilter, UsersRepository, UserStatus } from './users.repository';
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

/**
 * Accounts: lookups, creation, the login lockout, password and access changes, and the cached
 * state every request checks. SQL lives in UsersRepository; methods taking a transaction run
 * in the caller's (with its audit record).
 */
@Injectable()
export class UsersService {
  constructor(
    private readonly repository: UsersRepository,
    private readonly stateCache: UserStateCache,
  ) {}

  /** Emails are stored and compared lower-cased (and trimmed), so uniqueness is case-insensitive. */
  static normalizeEmail(email: string): string {
    return email.trim().toLowerCase();
  }

  findById(id: string, tx?: Transaction): Promise<User | null> {
    return this.repository.findById(id, tx);
  }

  findByEmail(email: string, tx?: Transaction): Promise<User | null> {
    return this.repository.findByEmail(UsersService.normalizeEmail(email), tx);
  }

  /** The account with its password hash, for verifying a login. */
  findLoginCandidate(email: string): Promise<LoginCandidate | null> {
    return this.repository.findLoginCandidate(UsersService.normalizeEmail(email));
  }

  /** Inserts an account (inside the caller's transaction); a taken email, in any letter case, is a 409. */
  async create(tx: Transaction, input: NewUser): Promise<User> {
    const user: User = {
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
    };
    try {
      await this.repository.insert(tx, { ...user, passwordHash: input.passwordHash, now: input.now });
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
  async registerFailedLogin(tx: Transaction, userId: string, now: Date, policy: LockoutPolicy): Promise<Date | null> {
    const windowStart = new Date(now.getTime() - policy.windowSec * 1000);
    const failures = await this.repository.countFailedLogin(tx, userId, windowStart, now);
    if (failures < policy.threshold) return null;
    const lockedUntil = new Date(now.getTime() + policy.durationSec * 1000);
    // The count starts afresh after the lock, so an unlocked account gets the full allowance again.
    await this.repository.lockOut(tx, userId, lockedUntil);
    return lockedUntil;
  }

  /** The stored password hash of an account (for re-authentication), or null when there is none. */
  passwordHashOf(id: string, tx?: Transaction): Promise<string | null> {
    return this.repository.passwordHashOf(id, tx);
  }

  /**
   * Replaces the password hash if it is still `expectedHash` (the one the current password was
   * checked against), so of two concurrent changes only the first wins. Clears the failure count:
   * the caller has just proved the password. Returns false when the hash had changed meanwhile.
   */
  replacePasswordHash(tx: Transaction, id: string, expectedHash: string, newHash: string, now: Date): Promise<boolean> {
    return this.repository.replacePasswordHash(tx, id, expectedHash, newHash, now);
  }

  /** A successful login: forget earlier failures and note the time. */
  registerSuccessfulLogin(tx: Transaction, userId: string, now: Date): Promise<void> {
    return this.repository.recordSuccessfulLogin(tx, userId, now);
  }

  list(filter: UserListFilter): Promise<{ users: User[]; total: number }> {
    return this.repository.list(filter);
  }

  /** Locks the row for the rest of the caller's transaction and returns it. */
  lockById(tx: Transaction, id: string): Promise<User | null> {
    return this.repository.lockById(tx, id);
  }

  /**
   * Locks the row for the rest of the caller's transaction without reading it (the lock order
   * of every transaction touching a user's MFA or lockout: the users row first). False when there is no such user.
   */
  lock(tx: Transaction, id: string): Promise<boolean> {
    return this.repository.lock(tx, id);
  }

  /**
   * Ids of the active administrators, locked until the caller's transaction ends, so two
   * concurrent demotions cannot both see "another admin remains".
   */
  lockActiveAdminIds(tx: Transaction): Promise<string[]> {
    return this.repository.lockActiveAdminIds(tx);
  }

  updateAccess(tx: Transaction, id: string, roles: Role[], permissions: string[], now: Date): Promise<void> {
    return this.repository.updateAccess(tx, id, roles, permissions, now);
  }

  updateStatus(tx: Transaction, id: string, status: UserStatus, now: Date): Promise<void> {
    return this.repository.updateStatus(tx, id, status, now);
  }

  /** Records whether the account has an active second factor (the MFA lib's factor row says which). */
  setMfaEnabled(tx: Transaction, id: string, enabled: boolean, now: Date): Promise<void> {
    return this.repository.setMfaEnabled(tx, id, enabled, now);
  }

  /**
   * The state every authenticated request checks (cached; see UserStateCache): answered at once
   * (no promise) from the cache, else read from the database; await it either way.
   */
  accessState(userId: string): UserAccessState | Promise<UserAccessState | null> {
    return this.stateCache.get(userId) ?? this.loadAccessState(userId);
  }

  private async loadAccessState(userId: string): Promise<UserAccessState | null> {
    const generation = this.stateCache.generation(userId);
    const state = await this.repository.accessStateOf(userId);
    if (!state) return null;
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
