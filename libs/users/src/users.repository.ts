import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { Role } from '@app/core';
import { returnedRows, Transaction } from '@app/database';

export type UserStatus = 'active' | 'suspended' | 'deleted';

/** An account as the application sees it: never the password hash (see LoginCandidate). */
export interface User {
  id: string;
  /** Stored lower-cased; unique. */
  email: string;
  name: string;
  organization: string | null;
  phone: string | null;
  roles: Role[];
  /** Grants on top of the roles' defaults. */
  permissions: string[];
  status: UserStatus;
  mfaEnabled: boolean;
  lastLogin: Date | null;
  /** Failed logins (password or MFA) counted since failedWindowStart. */
  failedLogins: number;
  failedWindowStart: Date | null;
  lockedUntil: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A login candidate: the account plus the column login needs and nobody else may read. */
export type LoginCandidate = User & { passwordHash: string };

/** A `users` row as the driver returns it (migration 1764100000000). */
interface UserRow {
  id: string;
  email: string;
  name: string;
  organization: string | null;
  phone: string | null;
  password_hash: string;
  roles: Role[];
  permissions: string[];
  status: UserStatus;
  mfa_enabled: boolean;
  last_login: Date | null;
  failed_logins: number;
  failed_window_start: Date | null;
  locked_until: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** Every column of `users`, in table order. */
export const USER_TABLE_COLUMNS: ReadonlyArray<keyof UserRow> = [
  'id',
  'email',
  'name',
  'organization',
  'phone',
  'password_hash',
  'roles',
  'permissions',
  'status',
  'mfa_enabled',
  'last_login',
  'failed_logins',
  'failed_window_start',
  'locked_until',
  'created_at',
  'updated_at',
];

/** What a `User` is read from: every column but the hash. */
const USER_COLUMNS = USER_TABLE_COLUMNS.filter((column) => column !== 'password_hash').join(', ');

export interface NewUserRow {
  id: string;
  email: string;
  name: string;
  organization: string | null;
  phone: string | null;
  passwordHash: string;
  roles: Role[];
  permissions: string[];
  status: UserStatus;
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

const dateOrNull = (value: Date | string | null): Date | null => (value === null ? null : new Date(value));

function userOf(row: Omit<UserRow, 'password_hash'>): User {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    organization: row.organization,
    phone: row.phone,
    roles: [...row.roles],
    permissions: [...row.permissions],
    status: row.status,
    mfaEnabled: row.mfa_enabled,
    lastLogin: dateOrNull(row.last_login),
    failedLogins: Number(row.failed_logins),
    failedWindowStart: dateOrNull(row.failed_window_start),
    lockedUntil: dateOrNull(row.locked_until),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** Escapes LIKE wildcards so a search for "a_b%" means exactly that text. */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * SQL of `users`. Methods that take a transaction run in it (row locks last until it ends);
 * the others use a pooled connection: do not call those inside a transaction (the embedded
 * database has a single connection).
 */
@Injectable()
export class UsersRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async findById(id: string, tx?: Transaction): Promise<User | null> {
    const [row]: UserRow[] = await (tx ?? this.dataSource).query(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1`, [id]);
    return row ? userOf(row) : null;
  }

  /** `email` as stored (normalised by the caller). */
  async findByEmail(email: string, tx?: Transaction): Promise<User | null> {
    const [row]: UserRow[] = await (tx ?? this.dataSource).query(`SELECT ${USER_COLUMNS} FROM users WHERE email = $1`, [email]);
    return row ? userOf(row) : null;
  }

  async findLoginCandidate(email: string): Promise<LoginCandidate | null> {
    const [row]: UserRow[] = await this.dataSource.query(`SELECT ${USER_COLUMNS}, password_hash FROM users WHERE email = $1`, [email]);
    return row ? { ...userOf(row), passwordHash: row.password_hash } : null;
  }

  /** The state every request checks: a narrow read, cheap enough for every request while Redis is away. */
  async accessStateOf(id: string): Promise<Pick<User, 'id' | 'email' | 'status' | 'roles' | 'permissions'> | null> {
    const [row]: Array<Pick<UserRow, 'id' | 'email' | 'status' | 'roles' | 'permissions'>> = await this.dataSource.query(
      `SELECT id, email, status, roles, permissions FROM users WHERE id = $1`,
      [id],
    );
    return row ? { id: row.id, email: row.email, status: row.status, roles: [...row.roles], permissions: [...row.permissions] } : null;
  }

  /** Inserts; a taken email fails with the driver's unique violation (23505). */
  async insert(tx: Transaction, user: NewUserRow): Promise<void> {
    await tx.query(
      `INSERT INTO users (id, email, name, organization, phone, password_hash, roles, permissions, status, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)`,
      [
        user.id,
        user.email,
        user.name,
        user.organization,
        user.phone,
        user.passwordHash,
        user.roles,
        user.permissions,
        user.status,
        user.now,
      ],
    );
  }

  /**
   * Counts a failed login in one statement (concurrent failures serialise on the row lock): a
   * failure at or before `windowStart` starts a new count at `now`. Returns the count now.
   */
  async countFailedLogin(tx: Transaction, id: string, windowStart: Date, now: Date): Promise<number> {
    const rows = returnedRows<{ failed_logins: number }>(
      await tx.query(
        `UPDATE users SET
           failed_logins = CASE WHEN failed_window_start IS NULL OR failed_window_start <= $2 THEN 1 ELSE failed_logins + 1 END,
           failed_window_start = CASE WHEN failed_window_start IS NULL OR failed_window_start <= $2 THEN $3 ELSE failed_window_start END
         WHERE id = $1
         RETURNING failed_logins`,
        [id, windowStart, now],
      ),
    );
    return Number(rows[0]?.failed_logins ?? 0);
  }

  /** Locks the account until `lockedUntil`; the failure count starts afresh. */
  async lockOut(tx: Transaction, id: string, lockedUntil: Date): Promise<void> {
    await tx.query(`UPDATE users SET locked_until = $2, failed_logins = 0, failed_window_start = NULL WHERE id = $1`, [id, lockedUntil]);
  }

  async passwordHashOf(id: string, tx?: Transaction): Promise<string | null> {
    const [row]: Array<{ password_hash: string }> = await (tx ?? this.dataSource).query(`SELECT password_hash FROM users WHERE id = $1`, [
      id,
    ]);
    return row?.password_hash ?? null;
  }

  /** Replaces the hash only while it is still `expectedHash`; clears the failure count. False when it had changed. */
  async replacePasswordHash(tx: Transaction, id: string, expectedHash: string, newHash: string, now: Date): Promise<boolean> {
    const rows = returnedRows<{ id: string }>(
      await tx.query(
        `UPDATE users SET password_hash = $3, failed_logins = 0, failed_window_start = NULL, updated_at = $4
         WHERE id = $1 AND password_hash = $2 RETURNING id`,
        [id, expectedHash, newHash, now],
      ),
    );
    return rows.length === 1;
  }

  async recordSuccessfulLogin(tx: Transaction, id: string, now: Date): Promise<void> {
    await tx.query(`UPDATE users SET failed_logins = 0, failed_window_start = NULL, locked_until = NULL, last_login = $2 WHERE id = $1`, [
      id,
      now,
    ]);
  }

  async list(filter: UserListFilter): Promise<{ users: User[]; total: number }> {
    const params: unknown[] = [];
    const where: string[] = [];
    if (filter.role) {
      params.push(filter.role);
      where.push(`$${params.length} = ANY(roles)`);
    }
    if (filter.status) {
      params.push(filter.status);
      where.push(`status = $${params.length}`);
    }
    if (filter.search) {
      params.push(likePattern(filter.search.trim()));
      where.push(`(email ILIKE $${params.length} ESCAPE '\\' OR name ILIKE $${params.length} ESCAPE '\\')`);
    }
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const [{ total }]: Array<{ total: number }> = await this.dataSource.query(`SELECT count(*)::int AS total FROM users ${clause}`, params);
    const rows: UserRow[] = await this.dataSource.query(
      `SELECT ${USER_COLUMNS} FROM users ${clause} ORDER BY created_at DESC, id ASC LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
      [...params, filter.limit, filter.offset],
    );
    return { users: rows.map(userOf), total: Number(total) };
  }

  /** Locks the row for the rest of the transaction and returns it. */
  async lockById(tx: Transaction, id: string): Promise<User | null> {
    const [row]: UserRow[] = await tx.query(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1 FOR UPDATE`, [id]);
    return row ? userOf(row) : null;
  }

  /** Locks the row for the rest of the transaction; false when there is no such user. */
  async lock(tx: Transaction, id: string): Promise<boolean> {
    const rows: unknown[] = await tx.query(`SELECT id FROM users WHERE id = $1 FOR UPDATE`, [id]);
    return rows.length > 0;
  }

  /** Ids of the active administrators, locked for the rest of the transaction. */
  async lockActiveAdminIds(tx: Transaction): Promise<string[]> {
    const rows: Array<{ id: string }> = await tx.query(
      `SELECT id FROM users WHERE 'admin' = ANY(roles) AND status = 'active' ORDER BY id FOR UPDATE`,
    );
    return rows.map((row) => row.id);
  }

  async updateAccess(tx: Transaction, id: string, roles: Role[], permissions: string[], now: Date): Promise<void> {
    await tx.query(`UPDATE users SET roles = $2, permissions = $3, updated_at = $4 WHERE id = $1`, [id, roles, permissions, now]);
  }

  async updateStatus(tx: Transaction, id: string, status: UserStatus, now: Date): Promise<void> {
    await tx.query(`UPDATE users SET status = $2, updated_at = $3 WHERE id = $1`, [id, status, now]);
  }

  async setMfaEnabled(tx: Transaction, id: string, enabled: boolean, now: Date): Promise<void> {
    await tx.query(`UPDATE users SET mfa_enabled = $3, updated_at = $2 WHERE id = $1`, [id, now, enabled]);
  }
}
