import { AppException, ErrorCode, loadConfig, Principal } from '@app/core';
import type { Transaction } from '@app/database';
import type { SessionService } from '@app/sessions';
import { AuthService, SessionEndReason } from './auth.service';
import type { MfaService } from './mfa/mfa.service';
import { PasswordService } from './password/password.service';
import { FakeAudit } from './testing/fake-audit';
import { FakeTransaction, FakeUnitOfWork, InMemoryUsersRepository, TestClock, usersServiceOver } from './testing/in-memory-users';
import { AccessTokenService } from './tokens/access-token.service';
import type { NewRefreshToken, RefreshTokenRecord, RefreshTokenRepository } from './tokens/refresh-token.repository';
import { RefreshTokenService } from './tokens/refresh-token.service';

const PASSWORD = 'Correct-Horse-7-Battery';
const CLIENT = { ipAddress: '203.0.113.9', userAgent: 'unit' };

const txId = (tx: Transaction) => (tx as unknown as FakeTransaction).id;

/** Alice signed in with the given session. */
const alice = (sessionId: string): Principal => ({
  userId: 'usr_alice',
  email: 'alice@example.com',
  sessionId,
  roles: ['user'],
  permissions: [],
  via: 'jwt',
});

interface FakeSession {
  id: string;
  userId: string;
  status: 'active' | 'terminated';
  endReason: string | null;
  openedIn: number;
}

/** SessionService's surface the AuthService uses, over a map. */
class FakeSessions {
  readonly rows = new Map<string, FakeSession>();
  private next = 1;

  async open(tx: Transaction, input: { userId: string }) {
    const session: FakeSession = { id: `ses_${this.next++}`, userId: input.userId, status: 'active', endReason: null, openedIn: txId(tx) };
    this.rows.set(session.id, session);
    return { id: session.id };
  }

  async isActive(id: string): Promise<boolean> {
    return this.rows.get(id)?.status === 'active';
  }

  async holdActive(_tx: Transaction, id: string): Promise<boolean> {
    return this.isActive(id);
  }

  async end(_tx: Transaction, id: string, reason: string): Promise<boolean> {
    const session = this.rows.get(id);
    if (!session || session.status !== 'active') return false;
    Object.assign(session, { status: 'terminated', endReason: reason });
    return true;
  }
}

/** refresh_tokens in memory, joined to the fake sessions for the user. */
class InMemoryRefreshTokens {
  readonly rows = new Map<string, NewRefreshToken & { usedAt: Date | null }>();

  constructor(private readonly sessions: FakeSessions) {}

  async insert(_tx: Transaction, token: NewRefreshToken): Promise<void> {
    this.rows.set(token.id, { ...token, usedAt: null });
  }

  async findByHash(hash: string): Promise<RefreshTokenRecord | null> {
    const row = [...this.rows.values()].find((r) => r.tokenHash === hash);
    if (!row) return null;
    const userId = this.sessions.rows.get(row.sessionId)!.userId;
    return { id: row.id, sessionId: row.sessionId, userId, usedAt: row.usedAt, expiresAt: row.expiresAt };
  }

  async markUsed(_tx: Transaction, id: string, now: Date): Promise<boolean> {
    const row = this.rows.get(id);
    if (!row || row.usedAt || row.expiresAt <= now) return false;
    row.usedAt = now;
    return true;
  }
}

async function setup(options: { mfaEnabled?: boolean; mfaAccepts?: string } = {}) {
  const config = loadConfig({
    NODE_ENV: 'test',
    JWT_SECRET: 'unit-test-secret-unit-test-secret-0123456789',
    BCRYPT_COST: '4',
    LOCKOUT_THRESHOLD: '3',
    LOCKOUT_WINDOW: '600',
    LOCKOUT_DURATION: '300',
    REFRESH_TOKEN_TTL: '3600',
  });
  const clock = new TestClock();
  const uow = new FakeUnitOfWork();
  const usersTable = new InMemoryUsersRepository();
  const users = usersServiceOver(usersTable);
  const sessions = new FakeSessions();
  const refreshTable = new InMemoryRefreshTokens(sessions);
  const passwords = new PasswordService(config);
  const audit = new FakeAudit();
  const mfa = {
    startLoginChallenge: jest.fn(async () => undefined),
    verifyLoginCode: jest.fn(async (_tx: Transaction, _userId: string, code: string) => code === options.mfaAccepts),
  };
  const service = new AuthService(
    uow.asUnitOfWork(),
    users,
    sessions as unknown as SessionService,
    passwords,
    new AccessTokenService(config, clock),
    new RefreshTokenService(refreshTable as unknown as RefreshTokenRepository, clock, config),
    mfa as unknown as MfaService,
    audit.asAuditService(),
    clock,
    config,
  );
  const user = usersTable.add(
    { id: 'usr_alice', email: 'alice@example.com', mfaEnabled: options.mfaEnabled ?? false },
    await passwords.hash(PASSWORD),
  );
  return { service, clock, uow, usersTable, sessions, refreshTable, audit, mfa, user };
}

/** The AppException a promise rejects with. */
async function refusal(promise: Promise<unknown>): Promise<AppException> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AppException) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('AuthService', () => {
  describe('register', () => {
    it('stores the account with a normalised email and audits it in the same transaction', async () => {
      const { service, usersTable, audit, uow } = await setup();
      const dto = await service.register({ email: '  Bob@Example.COM ', name: ' Bob ', password: PASSWORD }, CLIENT);
      expect(dto.email).toBe('bob@example.com');
      expect(dto.name).toBe('Bob');
      expect(dto.roles).toEqual(['user']);
      const stored = await usersTable.findLoginCandidate('bob@example.com');
      expect(stored?.passwordHash).not.toBe(PASSWORD);
      const record = audit.last('auth.register');
      expect(record.tx).not.toBeNull();
      expect(record.entry.userId).toBe(dto.id);
      expect(uow.committed).toBe(1);
    });

    it('refuses a taken email in any letter case with 409 and writes no record', async () => {
      const { service, audit, uow } = await setup();
      const error = await refusal(service.register({ email: 'ALICE@example.com', name: 'A', password: PASSWORD }, CLIENT));
      expect(error.getStatus()).toBe(409);
      expect(audit.records).toHaveLength(0);
      expect(uow.rolledBack).toBe(1);
    });
  });

  describe('login', () => {
    it('opens a session, issues tokens and audits the login in the transaction that opened the session', async () => {
      const { service, sessions, refreshTable, usersTable, audit, clock } = await setup();
      const response = await service.login({ email: 'Alice@Example.com', password: PASSWORD }, CLIENT);
      expect(response.tokenType).toBe('Bearer');
      expect(response.refreshToken).toMatch(/^rt_/);
      expect(response.user.lastLogin).toBe(clock.now().toISOString());
      const [session] = [...sessions.rows.values()];
      expect(session.userId).toBe('usr_alice');
      const [stored] = [...refreshTable.rows.values()];
      expect(stored.sessionId).toBe(session.id);
      expect(stored.tokenHash).toBe(RefreshTokenService.hash(response.refreshToken));
      const record = audit.last('auth.login');
      expect(record.tx).toBe(session.openedIn);
      expect(record.entry.resource).toBe(`session:${session.id}`);
      expect(usersTable.get('usr_alice').lastLogin?.getTime()).toBe(clock.nowMs());
    });

    it('answers an unknown email and a wrong password with the same 401', async () => {
      const { service, audit } = await setup();
      const unknown = await refusal(service.login({ email: 'nobody@example.com', password: PASSWORD }, CLIENT));
      const wrong = await refusal(service.login({ email: 'alice@example.com', password: 'Wrong-password-1' }, CLIENT));
      expect([unknown.getStatus(), unknown.code, unknown.message]).toEqual([401, ErrorCode.UNAUTHORIZED, 'Invalid email or password']);
      expect([wrong.getStatus(), wrong.code, wrong.message]).toEqual([unknown.getStatus(), unknown.code, unknown.message]);
      expect(audit.records.map((r) => [r.entry.action, r.entry.details?.reason, r.tx === null])).toEqual([
        ['auth.login_failed', 'unknown_email', true],
        ['auth.login_failed', 'wrong_password', false],
      ]);
    });

    it('locks the account at the threshold, refuses even the right password while locked, and lets it in afterwards', async () => {
      const { service, usersTable, audit, clock, sessions } = await setup();
      for (let i = 0; i < 3; i++) await refusal(service.login({ email: 'alice@example.com', password: 'Wrong-password-1' }, CLIENT));
      const lockedUntil = usersTable.get('usr_alice').lockedUntil;
      expect(lockedUntil?.getTime()).toBe(clock.nowMs() + 300_000);
      const lockout = audit.last('auth.lockout');
      expect(lockout.entry.details).toMatchObject({ reason: 'wrong_password', threshold: 3, lockedUntil: lockedUntil?.toISOString() });
      expect(lockout.tx).toBe(audit.records[audit.records.indexOf(lockout) - 1].tx);

      const whileLocked = await refusal(service.login({ email: 'alice@example.com', password: PASSWORD }, CLIENT));
      expect(whileLocked.getStatus()).toBe(401);
      expect(audit.last('auth.login_failed').entry.details?.reason).toBe('locked');
      expect(sessions.rows.size).toBe(0);

      clock.advance(300_001);
      await service.login({ email: 'alice@example.com', password: PASSWORD }, CLIENT);
      expect(sessions.rows.size).toBe(1);
      expect(usersTable.get('usr_alice')).toMatchObject({ lockedUntil: null, failedLogins: 0 });
    });

    it('starts a new failure count once the window has passed', async () => {
      const { service, usersTable, clock } = await setup();
      for (let i = 0; i < 2; i++) await refusal(service.login({ email: 'alice@example.com', password: 'Wrong-password-1' }, CLIENT));
      clock.advance(600_001);
      await refusal(service.login({ email: 'alice@example.com', password: 'Wrong-password-1' }, CLIENT));
      expect(usersTable.get('usr_alice')).toMatchObject({ failedLogins: 1, lockedUntil: null });
    });

    it('asks for the second factor only after the password, and counts a wrong code toward the lockout', async () => {
      const { service, mfa, usersTable, audit, sessions } = await setup({ mfaEnabled: true, mfaAccepts: '123456' });
      const required = await refusal(service.login({ email: 'alice@example.com', password: PASSWORD }, CLIENT));
      expect([required.getStatus(), required.code]).toEqual([401, ErrorCode.MFA_REQUIRED]);
      expect(mfa.startLoginChallenge).toHaveBeenCalledWith('usr_alice');

      const wrong = await refusal(service.login({ email: 'alice@example.com', password: PASSWORD, mfaCode: '654321' }, CLIENT));
      expect(wrong.code).toBe(ErrorCode.UNAUTHORIZED);
      expect(usersTable.get('usr_alice').failedLogins).toBe(1);
      expect(audit.last('auth.login_failed').entry.details?.reason).toBe('invalid_mfa_code');
      // The users row is locked before the code is checked (one lock order for every MFA transaction).
      expect(usersTable.locks.map(([, id]) => id)).toEqual(['usr_alice']);

      await service.login({ email: 'alice@example.com', password: PASSWORD, mfaCode: '123456' }, CLIENT);
      expect(sessions.rows.size).toBe(1);
      expect(audit.last('auth.login').entry.details).toEqual({ mfa: true });
    });
  });

  describe('refresh', () => {
    it('rotates: the new token works, the old one is spent', async () => {
      const { service, refreshTable, audit } = await setup();
      const login = await service.login({ email: 'alice@example.com', password: PASSWORD }, CLIENT);
      const first = await service.refresh(login.refreshToken, CLIENT);
      expect(first.refreshToken).not.toBe(login.refreshToken);
      const spent = [...refreshTable.rows.values()].find((row) => row.tokenHash === RefreshTokenService.hash(login.refreshToken));
      expect(spent?.usedAt).not.toBeNull();
      const second = await service.refresh(first.refreshToken, CLIENT);
      expect(second.refreshToken).not.toBe(first.refreshToken);
      expect(audit.actions().filter((action) => action === 'auth.refresh')).toHaveLength(2);
    });

    it('revokes the whole session when a spent token comes back', async () => {
      const { service, sessions, audit } = await setup();
      const login = await service.login({ email: 'alice@example.com', password: PASSWORD }, CLIENT);
      const rotated = await service.refresh(login.refreshToken, CLIENT);
      const reuse = await refusal(service.refresh(login.refreshToken, CLIENT));
      expect(reuse.getStatus()).toBe(401);
      const [session] = [...sessions.rows.values()];
      expect(session).toMatchObject({ status: 'terminated', endReason: SessionEndReason.REFRESH_REUSE });
      const record = audit.last('auth.refresh_reuse');
      expect(record.entry).toMatchObject({ severity: 'critical', result: 'failure', details: { sessionRevoked: true } });
      expect(record.tx).not.toBeNull();
      // The legitimate holder's newer token dies with the session.
      expect((await refusal(service.refresh(rotated.refreshToken, CLIENT))).getStatus()).toBe(401);
    });

    it('refuses an expired token, a malformed one and one whose session ended', async () => {
      const { service, clock } = await setup();
      const login = await service.login({ email: 'alice@example.com', password: PASSWORD }, CLIENT);
      expect((await refusal(service.refresh('rt_not-a-token', CLIENT))).getStatus()).toBe(401);
      expect((await refusal(service.refresh(undefined, CLIENT))).getStatus()).toBe(401);
      clock.advance(3_600_000);
      expect((await refusal(service.refresh(login.refreshToken, CLIENT))).getStatus()).toBe(401);

      const again = await service.login({ email: 'alice@example.com', password: PASSWORD }, CLIENT);
      await service.logout(alice('ses_2'), CLIENT);
      expect((await refusal(service.refresh(again.refreshToken, CLIENT))).getStatus()).toBe(401);
    });
  });

  it('logout ends the session and audits it in the same transaction', async () => {
    const { service, sessions, audit } = await setup();
    await service.login({ email: 'alice@example.com', password: PASSWORD }, CLIENT);
    await service.logout(alice('ses_1'), CLIENT);
    expect(sessions.rows.get('ses_1')).toMatchObject({ status: 'terminated', endReason: SessionEndReason.LOGOUT });
    expect(audit.last('auth.logout').entry.resource).toBe('session:ses_1');
  });
});
