import { Clock } from '@app/core';
import type { Transaction, UnitOfWork } from '@app/database';
import { InMemoryUserStateCache, LoginCandidate, User, UsersService } from '@app/users';

/** The repository UsersService is built on (not exported by @app/users: only its shape matters here). */
type UsersRepositoryLike = ConstructorParameters<typeof UsersService>[0];

/** A clock the test moves. */
export class TestClock extends Clock {
  constructor(public ms = Date.UTC(2030, 0, 1)) {
    super();
  }
  override now(): Date {
    return new Date(this.ms);
  }
  override nowMs(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** A transaction of the fake unit of work: which one a write or an audit record used. */
export interface FakeTransaction {
  id: number;
}

/** Runs each unit of work with a fresh transaction token, and remembers which are open. */
export class FakeUnitOfWork {
  readonly open = new Set<number>();
  committed = 0;
  rolledBack = 0;
  private next = 1;

  async run<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    const tx: FakeTransaction = { id: this.next++ };
    this.open.add(tx.id);
    try {
      const result = await work(tx as unknown as Transaction);
      this.committed++;
      return result;
    } catch (error) {
      this.rolledBack++;
      throw error;
    } finally {
      this.open.delete(tx.id);
    }
  }

  asUnitOfWork(): UnitOfWork {
    return this as unknown as UnitOfWork;
  }
}

/** A stored account: the user and its password hash. */
interface StoredUser {
  user: User;
  passwordHash: string;
}

/** The users table in memory, with the statements' semantics (conditional updates, lockout window). */
export class InMemoryUsersRepository {
  readonly rows = new Map<string, StoredUser>();
  /** Users whose row a transaction locked: [transaction id, user id]. */
  readonly locks: Array<[number, string]> = [];

  add(user: Partial<User> & Pick<User, 'id' | 'email'>, passwordHash: string): User {
    const full: User = {
      name: 'Test User',
      organization: null,
      phone: null,
      roles: ['user'],
      permissions: [],
      status: 'active',
      mfaEnabled: false,
      lastLogin: null,
      failedLogins: 0,
      failedWindowStart: null,
      lockedUntil: null,
      createdAt: new Date(0),
      updatedAt: new Date(0),
      ...user,
    };
    this.rows.set(full.id, { user: full, passwordHash });
    return full;
  }

  get(id: string): User {
    const row = this.rows.get(id);
    if (!row) throw new Error(`no user ${id}`);
    return row.user;
  }

  async findById(id: string): Promise<User | null> {
    const row = this.rows.get(id);
    return row ? { ...row.user } : null;
  }

  async findByEmail(email: string): Promise<User | null> {
    return [...this.rows.values()].find((row) => row.user.email === email)?.user ?? null;
  }

  async findLoginCandidate(email: string): Promise<LoginCandidate | null> {
    const row = [...this.rows.values()].find((r) => r.user.email === email);
    return row ? { ...row.user, passwordHash: row.passwordHash } : null;
  }

  async accessStateOf(id: string) {
    const row = this.rows.get(id);
    if (!row) return null;
    const { email, status, roles, permissions } = row.user;
    return { id, email, status, roles: [...roles], permissions: [...permissions] };
  }

  async insert(_tx: Transaction, user: User & { passwordHash: string }): Promise<void> {
    if ([...this.rows.values()].some((row) => row.user.email === user.email)) {
      throw Object.assign(new Error('duplicate key value violates unique constraint "users_email_key"'), { code: '23505' });
    }
    const { passwordHash, ...rest } = user;
    this.add(rest, passwordHash);
  }

  async countFailedLogin(_tx: Transaction, id: string, windowStart: Date, now: Date): Promise<number> {
    const user = this.get(id);
    if (user.failedWindowStart === null || user.failedWindowStart <= windowStart) {
      user.failedLogins = 1;
      user.failedWindowStart = now;
    } else {
      user.failedLogins += 1;
    }
    return user.failedLogins;
  }

  async lockOut(_tx: Transaction, id: string, lockedUntil: Date): Promise<void> {
    Object.assign(this.get(id), { lockedUntil, failedLogins: 0, failedWindowStart: null });
  }

  async passwordHashOf(id: string): Promise<string | null> {
    return this.rows.get(id)?.passwordHash ?? null;
  }

  async replacePasswordHash(_tx: Transaction, id: string, expectedHash: string, newHash: string, now: Date): Promise<boolean> {
    const row = this.rows.get(id);
    if (!row || row.passwordHash !== expectedHash) return false;
    row.passwordHash = newHash;
    Object.assign(row.user, { failedLogins: 0, failedWindowStart: null, updatedAt: now });
    return true;
  }

  async recordSuccessfulLogin(_tx: Transaction, id: string, now: Date): Promise<void> {
    Object.assign(this.get(id), { failedLogins: 0, failedWindowStart: null, lockedUntil: null, lastLogin: now });
  }

  async lock(tx: Transaction, id: string): Promise<boolean> {
    this.locks.push([(tx as unknown as FakeTransaction).id, id]);
    return this.rows.has(id);
  }

  async lockById(tx: Transaction, id: string): Promise<User | null> {
    return (await this.lock(tx, id)) ? this.findById(id) : null;
  }

  async setMfaEnabled(_tx: Transaction, id: string, enabled: boolean, now: Date): Promise<void> {
    Object.assign(this.get(id), { mfaEnabled: enabled, updatedAt: now });
  }
}

/** A UsersService over the in-memory table (the real lockout logic, no database). */
export function usersServiceOver(repository: InMemoryUsersRepository): UsersService {
  return new UsersService(repository as unknown as UsersRepositoryLike, new InMemoryUserStateCache());
}
