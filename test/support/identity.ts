import type { INestApplicationContext } from '@nestjs/common';
import { Clock } from '@app/core';
import { http, HttpResult } from './test-app';

/**
 * The one identity kit of the end-to-end suites: the test password, the first administrator,
 * the environment that keeps bcrypt cheap and the general limits out of the way, signing up and
 * in, and the session id of a token. (test/auth/identity.helpers.ts, test/tools/tools-test-kit.ts
 * and test/faults/fault-kit.ts re-export these for the suites that import them from there.)
 */

/** Every test user's password, the first administrator's too (meets the password policy). */
export const PASSWORD = 'Tr0ub4dor&Zebra9';
export const ADMIN_EMAIL = 'admin@example.com';
export const ADMIN_PASSWORD = PASSWORD;

/** Env for suites: cheap bcrypt, a first admin, limits out of the way unless a test is about them. */
export function identityEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    BCRYPT_COST: '4',
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    AUTH_RATE_LIMIT: '100000',
    RATE_LIMIT: '100000',
    ...extra,
  };
}

/** A signed-in user: who, the access token and the session it belongs to. */
export interface Caller {
  userId: string;
  token: string;
  sessionId: string;
}

/** The session id is the access token's `sid` claim. */
export function sessionOf(token: string): string {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')).sid;
}

export async function login(t: { baseUrl: string }, email: string, password = PASSWORD): Promise<Caller> {
  const res = await http(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { email, password } });
  if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${res.text}`);
  return { userId: res.body.user.id, token: res.body.accessToken, sessionId: sessionOf(res.body.accessToken) };
}

/** Registers (a plain `user`) and logs in. */
export async function signUp(t: { baseUrl: string }, email: string, password = PASSWORD): Promise<Caller> {
  const res = await http(t.baseUrl, 'POST', '/api/v1/auth/register', { body: { email, password, name: email.split('@')[0] } });
  if (res.status !== 201) throw new Error(`register ${email}: ${res.status} ${res.text}`);
  return login(t, email, password);
}

/** Drives the server's Clock from the test (lockout, token expiry and idle sessions follow it). */
export function controlClock(app: INestApplicationContext): { advance(seconds: number): void; restore(): void } {
  const clock = app.get(Clock);
  let offsetMs = 0;
  const nowMs = jest.spyOn(clock, 'nowMs').mockImplementation(() => Date.now() + offsetMs);
  const now = jest.spyOn(clock, 'now').mockImplementation(() => new Date(Date.now() + offsetMs));
  return {
    advance: (seconds) => {
      offsetMs += seconds * 1000;
    },
    restore: () => {
      nowMs.mockRestore();
      now.mockRestore();
    },
  };
}

/** The identity routes, one method each; answers are returned as they are (never throws on status). */
export class IdentityClient {
  constructor(readonly baseUrl: string) {}

  register(email: string, password = PASSWORD, extra: Record<string, unknown> = {}): Promise<HttpResult> {
    return http(this.baseUrl, 'POST', '/api/v1/auth/register', { body: { email, password, name: email.split('@')[0], ...extra } });
  }

  login(email: string, password = PASSWORD, headers: Record<string, string> = {}): Promise<HttpResult> {
    return http(this.baseUrl, 'POST', '/api/v1/auth/login', { body: { email, password }, headers });
  }

  refresh(refreshToken: string): Promise<HttpResult> {
    return http(this.baseUrl, 'POST', '/api/v1/auth/refresh', { token: refreshToken });
  }

  me(token: string, headers: Record<string, string> = {}): Promise<HttpResult> {
    return http(this.baseUrl, 'GET', '/api/v1/auth/me', { token, headers });
  }

  logout(token: string): Promise<HttpResult> {
    return http(this.baseUrl, 'POST', '/api/v1/auth/logout', { token });
  }

  /** Registers (if needed) and logs in; returns the login body. */
  async session(email: string, password = PASSWORD): Promise<{ accessToken: string; refreshToken: string; user: { id: string } }> {
    const registered = await this.register(email, password);
    if (registered.status !== 201 && registered.status !== 409)
      throw new Error(`register ${email}: ${registered.status} ${registered.text}`);
    const res = await this.login(email, password);
    if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${res.text}`);
    return res.body;
  }

  async adminToken(): Promise<string> {
    return (await this.session(ADMIN_EMAIL, ADMIN_PASSWORD)).accessToken;
  }

  setRoles(adminToken: string, userId: string, roles: string[], permissions?: string[]): Promise<HttpResult> {
    return http(this.baseUrl, 'PUT', `/api/v1/admin/users/${userId}/roles`, {
      token: adminToken,
      body: permissions ? { roles, permissions } : { roles },
    });
  }
}

/** The parts of an Error body that must not vary between two refusals that should look alike. */
export function comparable(res: HttpResult): unknown {
  const { requestId: _r, timestamp: _t, traceId: _x, ...rest } = res.body ?? {};
  return { status: res.status, body: rest, wwwAuthenticate: res.headers.get('www-authenticate') };
}
