import type { INestApplicationContext } from '@nestjs/common';
import { Clock } from '@app/core';
import { http, HttpResult } from '../support/test-app';

export const PASSWORD = 'Vq7$kLm2pXz9Ab';
export const ADMIN_EMAIL = 'root.admin@example.com';
export const ADMIN_PASSWORD = 'Adm1n$Secure9Key';

/** Env for identity suites: cheap bcrypt, limits out of the way unless a test is about them. */
export const IDENTITY_ENV = {
  BCRYPT_COST: '4',
  AUTH_RATE_LIMIT: '100000',
  RATE_LIMIT: '100000',
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
};

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
    if (registered.status !== 201 && registered.status !== 409) throw new Error(`register ${email}: ${registered.status} ${registered.text}`);
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
