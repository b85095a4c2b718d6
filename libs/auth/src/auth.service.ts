import { Inject, Injectable } from '@nestjs/common';
import { AuditAction, auditEvent, AuditService } from '@app/audit';
import { Actor, APP_CONFIG, AppConfig, Clock, Principal } from '@app/core';
import { Transaction, UnitOfWork } from '@app/database';
import { SessionService } from '@app/sessions';
import { LoginCandidate, LockoutPolicy, lockoutPolicyOf, User, UserDto, UsersService } from '@app/users';
import { idpSignInRequired, invalidCredentials, invalidToken, mfaRequired } from './auth.errors';
import { LoginDto, MFA_CODE_PATTERN } from './dto/login.dto';
import { LoginResponseDto } from './dto/login-response.dto';
import { LogoutResponseDto } from './dto/logout-response.dto';
import { RefreshResponseDto } from './dto/refresh-response.dto';
import { RegisterDto } from './dto/register.dto';
import { MfaService } from './mfa/mfa.service';
import { PasswordService } from './password/password.service';
import { AccessTokenService } from './tokens/access-token.service';
import { RefreshTokenService } from './tokens/refresh-token.service';

type LoginFailure = 'unknown_email' | 'locked' | 'inactive' | 'wrong_password' | 'invalid_mfa_code' | 'idp_sign_in_required';

/** A sign-in proven by an enterprise identity provider, opened in the caller's transaction (see openVerifiedSignIn). */
export interface VerifiedSignIn {
  userId: string;
  sessionId: string;
  refreshToken: string;
  user: UserDto;
}

/** Session end reasons written by this service. */
export const SessionEndReason = { LOGOUT: 'logout', REFRESH_REUSE: 'refresh_reuse' } as const;

/**
 * Accounts and tokens: register, login (with lockout and MFA), refresh with rotation and
 * reuse detection, logout. Every change commits together with its audit record.
 */
@Injectable()
export class AuthService {
  private readonly lockout: LockoutPolicy;
  /** Email domain → the identity provider its accounts must sign in with (no local passwords). */
  private readonly requiredDomains: Readonly<Record<string, string>>;
  private readonly providerNames: ReadonlyMap<string, string>;

  constructor(
    private readonly unitOfWork: UnitOfWork,
    private readonly users: UsersService,
    private readonly sessions: SessionService,
    private readonly passwords: PasswordService,
    private readonly accessTokens: AccessTokenService,
    private readonly refreshTokens: RefreshTokenService,
    private readonly mfa: MfaService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.lockout = lockoutPolicyOf(config);
    this.requiredDomains = config.identity.requiredDomains;
    this.providerNames = new Map(config.identity.providers.map((provider) => [provider.name, provider.displayName]));
  }

  /** The provider an email's domain must sign in with, when an admin requires one (IDP_<NAME>_REQUIRE_FOR_DOMAINS). */
  private requiredProviderOf(email: string): string | undefined {
    const domain = email.trim().toLowerCase().split('@').pop() ?? '';
    return Object.hasOwn(this.requiredDomains, domain) ? this.requiredDomains[domain] : undefined;
  }

  async register(dto: RegisterDto, client: Actor): Promise<UserDto> {
    const required = this.requiredProviderOf(dto.email);
    if (required) throw idpSignInRequired(required, this.providerNames.get(required) ?? required);
    const passwordHash = await this.passwords.hash(dto.password);
    const user = await this.unitOfWork.run(async (tx) => {
      const created = await this.users.create(tx, {
        email: dto.email,
        name: dto.name,
        organization: dto.organization ?? null,
        phone: dto.phone ?? null,
        passwordHash,
        now: this.clock.now(),
      });
      await this.audit.record(
        tx,
        auditEvent(AuditAction.AUTH_REGISTER, client, {
          userId: created.id,
          resource: `user:${created.id}`,
          details: { email: created.email },
        }),
      );
      return created;
    });
    return UserDto.from(user);
  }

  /**
   * Every failure before the second factor gives the same 401 (same body, and the same bcrypt
   * work: unknown emails are compared against a dummy hash). MFA_REQUIRED is only ever
   * revealed to a caller who knows the password of an active, unlocked account.
   */
  async login(dto: LoginDto, client: Actor): Promise<LoginResponseDto> {
    const candidate = await this.checkPassword(dto.email, dto.password, client);
    if (candidate.mfaEnabled && !dto.mfaCode) {
      await this.mfa.startLoginChallenge(candidate.id);
      throw mfaRequired();
    }

    const outcome = await this.unitOfWork.run(async (tx) => {
      // Row lock first, audit lock last, in every transaction touching the user: the MFA check may
      // write audit records before the failure count updates the row.
      if (candidate.mfaEnabled) await this.users.lockById(tx, candidate.id);
      if (candidate.mfaEnabled && !(await this.mfa.verifyLoginCode(tx, candidate.id, dto.mfaCode as string))) {
        await this.countFailure(tx, candidate.id, 'invalid_mfa_code', client);
        return null;
      }
      return this.completeLogin(tx, candidate, client);
    });
    if (!outcome) throw invalidCredentials();

    const access = this.accessTokens.sign({ userId: candidate.id, sessionId: outcome.sessionId, roles: candidate.roles });
    return {
      accessToken: access.token,
      refreshToken: outcome.refreshToken,
      expiresIn: access.expiresIn,
      tokenType: 'Bearer',
      user: outcome.user,
    };
  }

  /**
   * The first step of the OAuth sign-in page: exactly login's password check (the same refusals,
   * audit records and lockout counting) without opening a REST session. `mfaRequired`: the account
   * has a second factor, whose SMS challenge (if any) is now started as login starts it; finish
   * with `verifySignInCode`. Otherwise the sign-in is complete and recorded.
   */
  async verifySignInPassword(email: string, password: string, client: Actor): Promise<{ userId: string; mfaRequired: boolean }> {
    const candidate = await this.checkPassword(email, password, client);
    if (candidate.mfaEnabled) {
      await this.mfa.startLoginChallenge(candidate.id);
      return { userId: candidate.id, mfaRequired: true };
    }
    await this.unitOfWork.run((tx) => this.recordSignIn(tx, candidate.id, client, { mfa: false }));
    return { userId: candidate.id, mfaRequired: false };
  }

  /**
   * The sign-in page's second step, for a user whose password `verifySignInPassword` accepted: the
   * TOTP, SMS or backup code checked as login checks it (replay protection, lockout counting).
   * False for a wrong code, a locked or inactive account.
   */
  async verifySignInCode(userId: string, code: string, client: Actor): Promise<boolean> {
    const user = await this.users.findById(userId);
    if (!user || !user.mfaEnabled) return false;
    if (user.lockedUntil && user.lockedUntil > this.clock.now()) {
      await this.audit.recordStandalone(loginFailure(AuditAction.AUTH_LOGIN_FAILED, client, userId, { reason: 'locked' }));
      return false;
    }
    if (user.status !== 'active') {
      await this.audit.recordStandalone(loginFailure(AuditAction.AUTH_LOGIN_FAILED, client, userId, { reason: 'inactive' }));
      return false;
    }
    return this.unitOfWork.run(async (tx) => {
      await this.users.lockById(tx, userId);
      if (!MFA_CODE_PATTERN.test(code) || !(await this.mfa.verifyLoginCode(tx, userId, code))) {
        await this.countFailure(tx, userId, 'invalid_mfa_code', client);
        return false;
      }
      await this.recordSignIn(tx, userId, client, { mfa: true });
      return true;
    });
  }

  /**
   * Rotates a refresh token. A token that was already used means two parties hold it: the
   * whole session is revoked (RFC 9700 §4.14.2) and every one of them has to log in again.
   */
  async refresh(token: string | undefined, client: Actor): Promise<RefreshResponseDto> {
    const record = token ? await this.refreshTokens.find(token) : null;
    if (!record) throw invalidToken();
    if (record.usedAt) {
      await this.unitOfWork.run((tx) => this.revokeForReuse(tx, record.sessionId, record.userId, client));
      throw invalidToken();
    }
    if (record.expiresAt.getTime() <= this.clock.nowMs()) throw invalidToken();
    if (!(await this.sessions.isActive(record.sessionId))) throw invalidToken();
    const user = await this.users.accessState(record.userId);
    if (!user || user.status !== 'active') throw invalidToken();

    const outcome = await this.unitOfWork.run(async (tx): Promise<string | 'reused' | null> => {
      if (!(await this.refreshTokens.claim(tx, record.id))) {
        // Lost the race to a concurrent presentation of the same token (or it just expired).
        if (record.expiresAt.getTime() <= this.clock.nowMs()) return null;
        await this.revokeForReuse(tx, record.sessionId, record.userId, client);
        return 'reused';
      }
      if (!(await this.sessions.holdActive(tx, record.sessionId))) return null;
      const next = await this.refreshTokens.issue(tx, record.sessionId);
      await this.audit.record(
        tx,
        auditEvent(AuditAction.AUTH_REFRESH, client, { userId: record.userId, resource: `session:${record.sessionId}` }),
      );
      return next;
    });
    if (outcome === null || outcome === 'reused') throw invalidToken();

    const access = this.accessTokens.sign({ userId: record.userId, sessionId: record.sessionId, roles: user.roles });
    return { accessToken: access.token, refreshToken: outcome, expiresIn: access.expiresIn, tokenType: 'Bearer' };
  }

  async logout(principal: Principal, client: Actor): Promise<LogoutResponseDto> {
    await this.unitOfWork.run(async (tx) => {
      await this.sessions.end(tx, principal.sessionId, SessionEndReason.LOGOUT, principal.userId);
      await this.audit.record(
        tx,
        auditEvent(AuditAction.AUTH_LOGOUT, client, { userId: principal.userId, resource: `session:${principal.sessionId}` }),
      );
    });
    return { message: 'Logged out', timestamp: this.clock.now().toISOString() };
  }

  async me(principal: Principal): Promise<UserDto> {
    const user = await this.users.findById(principal.userId);
    if (!user) throw invalidToken();
    return UserDto.from(user);
  }

  /**
   * Every failure before the second factor: the same 401, the same bcrypt work (unknown emails are
   * compared against a dummy hash), the same audit records and lockout counting.
   */
  private async checkPassword(email: string, password: string, client: Actor): Promise<LoginCandidate> {
    // Before any password work: the domain's policy is public, and says nothing about the account.
    const required = this.requiredProviderOf(email);
    if (required) {
      await this.audit.recordStandalone(
        loginFailure(AuditAction.AUTH_LOGIN_FAILED, client, null, { reason: 'idp_sign_in_required', provider: required }),
      );
      throw idpSignInRequired(required, this.providerNames.get(required) ?? required);
    }
    const candidate = await this.users.findLoginCandidate(email);
    const passwordOk = await this.passwords.verify(password, candidate?.passwordHash);
    const now = this.clock.now();

    if (!candidate) return this.refuse(null, 'unknown_email', client, { email: email.trim().toLowerCase() });
    if (candidate.lockedUntil && candidate.lockedUntil > now) return this.refuse(candidate.id, 'locked', client);
    if (candidate.status !== 'active') return this.refuse(candidate.id, 'inactive', client);
    if (!passwordOk) {
      await this.unitOfWork.run((tx) => this.countFailure(tx, candidate.id, 'wrong_password', client));
      throw invalidCredentials();
    }
    return candidate;
  }

  /** A sign-in on the OAuth sign-in page: like a login's record, with no REST session behind it. */
  private async recordSignIn(tx: Transaction, userId: string, client: Actor, details: Record<string, unknown>): Promise<void> {
    await this.users.registerSuccessfulLogin(tx, userId, this.clock.now());
    await this.audit.record(
      tx,
      auditEvent(AuditAction.AUTH_LOGIN, client, { userId, resource: `user:${userId}`, details: { ...details, via: 'oauth_sign_in' } }),
    );
  }

  private completeLogin(tx: Transaction, candidate: LoginCandidate, client: Actor) {
    return this.openSignIn(tx, candidate, client, { mfa: candidate.mfaEnabled });
  }

  /**
   * A sign-in an enterprise identity provider proved (the caller checked the user is active): the
   * same session, refresh token and `auth.login` record as a password login, in the caller's
   * transaction; `details` say how (method, provider). Sign the access token with
   * `tokensForVerifiedSignIn` once the transaction has committed.
   */
  openVerifiedSignIn(tx: Transaction, user: User, client: Actor, details: Record<string, unknown>): Promise<VerifiedSignIn> {
    return this.openSignIn(tx, user, client, details);
  }

  /**
   * A sign-in an enterprise identity provider proved on the OAuth sign-in page (the caller checked
   * the user is active): the `auth.login` record of the sign-in page, in the caller's transaction,
   * with no REST session behind it (the grant opens its own); `details` say how (method, provider).
   */
  recordVerifiedSignIn(tx: Transaction, userId: string, client: Actor, details: Record<string, unknown>): Promise<void> {
    return this.recordSignIn(tx, userId, client, details);
  }

  /** The login answer for a committed verified sign-in: exactly what POST /auth/login returns. */
  tokensForVerifiedSignIn(signIn: VerifiedSignIn): LoginResponseDto {
    const access = this.accessTokens.sign({ userId: signIn.userId, sessionId: signIn.sessionId, roles: signIn.user.roles });
    return {
      accessToken: access.token,
      refreshToken: signIn.refreshToken,
      expiresIn: access.expiresIn,
      tokenType: 'Bearer',
      user: signIn.user,
    };
  }

  private async openSignIn(tx: Transaction, account: User, client: Actor, details: Record<string, unknown>): Promise<VerifiedSignIn> {
    const now = this.clock.now();
    await this.users.registerSuccessfulLogin(tx, account.id, now);
    const session = await this.sessions.open(tx, {
      userId: account.id,
      connectionType: 'http',
      ipAddress: client.ipAddress,
      userAgent: client.userAgent,
    });
    const refreshToken = await this.refreshTokens.issue(tx, session.id);
    await this.audit.record(
      tx,
      auditEvent(AuditAction.AUTH_LOGIN, client, { userId: account.id, resource: `session:${session.id}`, details }),
    );
    const user = UserDto.from({ ...account, lastLogin: now });
    return { userId: account.id, sessionId: session.id, refreshToken, user };
  }

  /** A failed password or MFA code: counts toward the lockout, in one transaction with its records. */
  private async countFailure(tx: Transaction, userId: string, reason: LoginFailure, client: Actor): Promise<void> {
    const lockedUntil = await this.users.registerFailedLogin(tx, userId, this.clock.now(), this.lockout);
    await this.audit.record(tx, loginFailure(AuditAction.AUTH_LOGIN_FAILED, client, userId, { reason }));
    if (lockedUntil) {
      await this.audit.record(tx, {
        ...loginFailure(AuditAction.AUTH_LOCKOUT, client, userId, {
          reason,
          lockedUntil: lockedUntil.toISOString(),
          threshold: this.lockout.threshold,
          windowSec: this.lockout.windowSec,
        }),
      });
    }
  }

  /** A refused login that changes nothing but the audit log. */
  private async refuse(userId: string | null, reason: LoginFailure, client: Actor, details: Record<string, unknown> = {}): Promise<never> {
    await this.audit.recordStandalone(loginFailure(AuditAction.AUTH_LOGIN_FAILED, client, userId, { reason, ...details }));
    throw invalidCredentials();
  }

  private async revokeForReuse(tx: Transaction, sessionId: string, userId: string, client: Actor): Promise<void> {
    const ended = await this.sessions.end(tx, sessionId, SessionEndReason.REFRESH_REUSE);
    await this.audit.record(
      tx,
      auditEvent(AuditAction.AUTH_REFRESH_REUSE, client, {
        userId,
        resource: `session:${sessionId}`,
        result: 'failure',
        severity: 'critical',
        details: { sessionRevoked: ended },
      }),
    );
  }
}

/** A refused login: about the account tried (if known), not the (anonymous) caller. */
function loginFailure(action: AuditAction, client: Actor, userId: string | null, details: Record<string, unknown>) {
  return auditEvent(action, client, { userId, resource: userId ? `user:${userId}` : null, result: 'failure', details });
}
