import { AuthService } from '@app/auth';
import { DATABASE_KINDS, http, HttpResult, startTestApp, TestApp } from '../support/test-app';
import { IdentityClient, PASSWORD } from './identity.helpers';

const AUTH_LIMIT = 3;
const DEFAULT_LIMIT = 5;
const ERROR_KEYS = ['details', 'error', 'message', 'requestId', 'timestamp', 'traceId'];

describe.each(DATABASE_KINDS)('rate limits (%s)', (kind) => {
  let t: TestApp;
  let api: IdentityClient;
  const tokens: Record<'alice' | 'bob', string> = { alice: '', bob: '' };

  beforeAll(async () => {
    t = await startTestApp(kind, {
      env: {
        BCRYPT_COST: '4',
        AUTH_RATE_LIMIT: String(AUTH_LIMIT),
        AUTH_RATE_WINDOW: '60',
        RATE_LIMIT: String(DEFAULT_LIMIT),
        RATE_LIMIT_WINDOW: '60',
      },
    });
    api = new IdentityClient(t.baseUrl);
    // Accounts made behind the HTTP layer, so they spend none of the budgets under test.
    const auth = t.app.get(AuthService);
    const client = { ipAddress: '10.0.0.1', userAgent: 'setup' };
    for (const name of ['alice', 'bob'] as const) {
      await auth.register({ email: `${name}@example.com`, password: PASSWORD, name }, client);
      tokens[name] = (await auth.login({ email: `${name}@example.com`, password: PASSWORD }, client)).accessToken;
    }
  });
  afterAll(() => t?.close());

  const expect429 = (res: HttpResult, limit: number) => {
    expect(res.status).toBe(429);
    expect(Object.keys(res.body).sort()).toEqual(ERROR_KEYS);
    expect(res.body.error).toBe('RATE_LIMIT_EXCEEDED');
    expect(res.headers.get('x-ratelimit-limit')).toBe(String(limit));
    expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(res.headers.get('x-ratelimit-reset'))).toBeGreaterThan(0);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(res.headers.get('retry-after'))).toBeLessThanOrEqual(60);
  };

  it('limits authenticated routes per user, with X-RateLimit headers on every answer', async () => {
    for (let i = 1; i <= DEFAULT_LIMIT; i++) {
      const res = await api.me(tokens.alice);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBe(String(DEFAULT_LIMIT));
      expect(res.headers.get('x-ratelimit-remaining')).toBe(String(DEFAULT_LIMIT - i));
    }
    expect429(await api.me(tokens.alice), DEFAULT_LIMIT);
    // Another user from the same address has a budget of their own.
    expect((await api.me(tokens.bob)).status).toBe(200);
  });

  it('limits login, register and refresh per client IP, together, and a spoofed X-Forwarded-For does not help', async () => {
    const spoof = (i: number) => ({ 'x-forwarded-for': `203.0.113.${i}`, 'x-real-ip': `198.51.100.${i}` });
    for (let i = 1; i <= AUTH_LIMIT; i++) {
      const res = await api.login('alice@example.com', 'Wr0ng$Password9', spoof(i));
      expect(res.status).toBe(401);
      expect(res.headers.get('x-ratelimit-remaining')).toBe(String(AUTH_LIMIT - i));
    }
    expect429(await api.login('alice@example.com', PASSWORD, spoof(99)), AUTH_LIMIT);
    expect429(await api.register('carol@example.com', PASSWORD), AUTH_LIMIT);
    expect429(await http(t.baseUrl, 'POST', '/api/v1/auth/refresh', { token: 'rt_x', headers: spoof(7) }), AUTH_LIMIT);
    // The auth budget is separate from the per-user one.
    expect((await api.me(tokens.bob)).status).toBe(200);
  });
});
