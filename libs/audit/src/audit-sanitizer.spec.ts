import { AUDIT_LIMITS, isSecretKey, REDACTED, sanitizeAuditData, sanitizeAuditText } from './audit-sanitizer';

describe('isSecretKey', () => {
  it.each([
    'password',
    'newPassword',
    'current_password',
    'passwordHash',
    'token',
    'accessToken',
    'refresh_token',
    'tokenHash',
    'secret',
    'totpSecret',
    'client-secret',
    'mfaCode',
    'currentCode',
    'backupCodes',
    'apiKey',
    'x-api-key',
    'Authorization',
    'cookie',
    'Set-Cookie',
    'ticket',
    'privateKey',
  ])('treats %s as secret', (key) => {
    expect(isSecretKey(key)).toBe(true);
  });

  it.each(['email', 'method', 'statusCode', 'errorCode', 'code', 'reason', 'roles', 'sessionId', 'ip'])('keeps %s', (key) => {
    expect(isSecretKey(key)).toBe(false);
  });
});

describe('sanitizeAuditData', () => {
  it('redacts `code` by exact path (the MFA code, alone or as the body) and keeps error and status codes elsewhere', () => {
    const out = sanitizeAuditData({
      code: '123456',
      body: { type: 'totp', code: '654321' },
      error: { code: 'TOOL_TIMEOUT', message: 'slow' },
      upstream: { body: { code: 429 } },
      results: [{ code: 'E1' }],
    });
    expect(out).toEqual({
      code: REDACTED,
      body: { type: 'totp', code: REDACTED },
      error: { code: 'TOOL_TIMEOUT', message: 'slow' },
      upstream: { body: { code: 429 } },
      results: [{ code: 'E1' }],
    });
  });

  it('redacts secrets at any depth, in objects inside arrays too', () => {
    const out = sanitizeAuditData({
      email: 'a@example.com',
      password: 'Hunter2!Hunter2!',
      nested: { refreshToken: 'rt', deeper: { mfaCode: '123456', ok: 1 } },
      list: [{ apiKey: 'k', name: 'n' }],
      backupCodes: ['a', 'b'],
    });
    expect(out).toEqual({
      email: 'a@example.com',
      password: REDACTED,
      nested: { refreshToken: REDACTED, deeper: { mfaCode: REDACTED, ok: 1 } },
      list: [{ apiKey: REDACTED, name: 'n' }],
      backupCodes: REDACTED,
    });
  });

  it('masks bearer tokens, JWTs and secret query parameters inside ordinary strings', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3JfMSJ9.c2lnbmF0dXJl';
    const out = sanitizeAuditData({
      header: `Bearer ${jwt}`,
      message: `token was ${jwt} here`,
      url: '/callback?state=s&code=abc123&ticket=t1',
    });
    const text = JSON.stringify(out);
    expect(text).not.toContain(jwt);
    expect(text).not.toContain('abc123');
    expect(text).not.toContain('t1');
    expect(out.url).toBe(`/callback?state=s&code=${REDACTED}&ticket=${REDACTED}`);
  });

  it('truncates long strings and long arrays', () => {
    const out = sanitizeAuditData({ s: 'x'.repeat(AUDIT_LIMITS.maxString + 50), a: Array.from({ length: 150 }, (_, i) => i) });
    expect((out.s as string).startsWith('x'.repeat(AUDIT_LIMITS.maxString))).toBe(true);
    expect((out.s as string).endsWith('…[truncated]')).toBe(true);
    expect(out.a).toHaveLength(AUDIT_LIMITS.maxEntries + 1);
    expect((out.a as unknown[])[AUDIT_LIMITS.maxEntries]).toBe('…[50 more]');
  });

  it('caps the total serialised size', () => {
    const big = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, 'y'.repeat(1000)]));
    const out = sanitizeAuditData(big);
    expect(out.truncated).toBe(true);
    expect(out.originalBytes).toBeGreaterThan(AUDIT_LIMITS.maxJsonBytes);
    expect(Buffer.byteLength(JSON.stringify(out))).toBeLessThan(AUDIT_LIMITS.maxJsonBytes);
  });

  it('bounds depth and survives cycles', () => {
    const cyclic: Record<string, unknown> = { name: 'c' };
    cyclic.self = cyclic;
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 20; i += 1) deep = { child: deep };
    const out = sanitizeAuditData({ cyclic, deep });
    expect((out.cyclic as Record<string, unknown>).self).toBe('[circular]');
    let node: unknown = out.deep;
    while (typeof node === 'object' && node !== null) node = (node as Record<string, unknown>).child;
    expect(node).toBe('[truncated: too deep]');
  });

  it('produces plain JSON that survives a round trip unchanged', () => {
    const out = sanitizeAuditData({
      when: new Date('2025-01-31T00:00:00.000Z'),
      big: BigInt(12345678901234567890n),
      nan: Number.NaN,
      skip: undefined,
      fn: () => 1,
      arr: [undefined, 1],
      err: new Error('boom'),
      set: new Set([1, 2]),
      map: new Map([['a', 1]]),
      bytes: Buffer.from('abc'),
      nul: 'a\u0000b',
      lone: 'x\uD800y',
    });
    expect(JSON.parse(JSON.stringify(out))).toEqual(out);
    expect(out).toEqual({
      when: '2025-01-31T00:00:00.000Z',
      big: '12345678901234567890',
      nan: null,
      arr: [null, 1],
      err: { name: 'Error', message: 'boom' },
      set: [1, 2],
      map: { a: 1 },
      bytes: '[binary 3 bytes]',
      nul: 'ab',
      lone: 'x\uFFFDy',
    });
  });

  it('keeps a "__proto__" key as data without touching the prototype', () => {
    const out = sanitizeAuditData(JSON.parse('{"__proto__": {"polluted": true}}'));
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(out)).toEqual(['__proto__']);
  });

  it('always returns an object', () => {
    expect(sanitizeAuditData(undefined)).toEqual({});
    expect(sanitizeAuditData(null)).toEqual({});
    expect(sanitizeAuditData(['a'])).toEqual({ value: ['a'] });
  });
});

describe('sanitizeAuditText', () => {
  it('maps empty to null, strips NUL, masks secrets and bounds length', () => {
    expect(sanitizeAuditText(undefined, 10)).toBeNull();
    expect(sanitizeAuditText('', 10)).toBeNull();
    expect(sanitizeAuditText('a\u0000b', 10)).toBe('ab');
    expect(sanitizeAuditText('/x?token=abc', 100)).toBe(`/x?token=${REDACTED}`);
    expect(sanitizeAuditText('abcdefghijkl', 4)).toBe('abcd…[truncated]');
  });
});

describe('sanitizeAuditData, strings that need no cleaning', () => {
  it('keeps plain strings as they are and still cleans every kind of dirty one, whatever its case', () => {
    const cleaned = sanitizeAuditData({
      plain: 'completed: tool_echo in 3 ms',
      bearer: 'header BEARER abc.def',
      jwt: 'eyJhbGciOi.eyJzdWIiOi.sig',
      query: 'https://x.example/cb?code=123&state=s',
      nul: 'a\u0000b',
      lone: 'x\uD800y',
      long: 'z'.repeat(1100),
    });
    expect(cleaned.plain).toBe('completed: tool_echo in 3 ms');
    expect(cleaned.bearer).toBe('header Bearer [REDACTED]');
    expect(cleaned.jwt).toBe('[REDACTED]');
    expect(cleaned.query).toBe('https://x.example/cb?code=[REDACTED]&state=s');
    expect(cleaned.nul).toBe('ab');
    expect(cleaned.lone).toBe('x\uFFFDy');
    expect(cleaned.long).toBe(`${'z'.repeat(1024)}…[truncated]`);
  });

  it('redacts a secret key every time it is seen (the key cache)', () => {
    for (let i = 0; i < 3; i++)
      expect(sanitizeAuditData({ clientSecret: 's', status: 'ok' })).toEqual({ clientSecret: '[REDACTED]', status: 'ok' });
  });
});
