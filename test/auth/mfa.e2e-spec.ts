import * as speakeasy from 'speakeasy';
import { DataSource } from 'typeorm';
import { Clock } from '@app/core';
import { LogSmsSender, SmsSender } from '@app/auth';
import { PASSWORD } from '../support/identity';
import { DATABASE_KINDS, http, HttpResult, startTestApp, TestApp } from '../support/test-app';

const LOCKOUT_THRESHOLD = 3;
const LOCKOUT_DURATION_SEC = 60;
const SMS_CODE_TTL_SEC = 60;
const SMS_MAX_ATTEMPTS = 3;

describe.each(DATABASE_KINDS)('MFA over HTTP (%s)', (kind) => {
  let t: TestApp;
  let db: DataSource;
  let sms: LogSmsSender;
  // The server's Clock, driven by the test: TOTP steps, SMS expiry and lockout move with it.
  let nowMs: number;

  beforeAll(async () => {
    t = await startTestApp(kind, {
      env: {
        BCRYPT_COST: '4',
        LOCKOUT_THRESHOLD: String(LOCKOUT_THRESHOLD),
        LOCKOUT_DURATION: String(LOCKOUT_DURATION_SEC),
        SMS_CODE_TTL: String(SMS_CODE_TTL_SEC),
        SMS_MAX_ATTEMPTS: String(SMS_MAX_ATTEMPTS),
        AUTH_RATE_LIMIT: '100000',
        RATE_LIMIT: '100000',
      },
    });
    db = t.app.get(DataSource);
    sms = t.app.get(SmsSender) as LogSmsSender;
    expect(sms).toBeInstanceOf(LogSmsSender);
    // Start in the middle of a TOTP step so ±1 step is unambiguous.
    nowMs = Math.floor(Date.now() / 30_000) * 30_000 + 15_000;
    const clock = t.app.get(Clock);
    jest.spyOn(clock, 'nowMs').mockImplementation(() => nowMs);
    jest.spyOn(clock, 'now').mockImplementation(() => new Date(nowMs));
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await t?.close();
  });

  const advance = (seconds: number) => {
    nowMs += seconds * 1000;
  };
  const totp = (secret: string, atMs = nowMs) => speakeasy.totp({ secret, encoding: 'base32', time: Math.floor(atMs / 1000) });
  /** A well-formed code that is none of the codes valid within the drift window. */
  const wrongTotp = (secret: string) => {
    const valid = new Set([-30_000, 0, 30_000].map((d) => totp(secret, nowMs + d)));
    let code = 123456;
    while (valid.has(String(code))) code++;
    return String(code);
  };
  const smsCode = (phone: string) => /\b(\d{6})\b/.exec(sms.lastMessageTo(phone) ?? '')?.[1];

  const register = async (email: string) => {
    const res = await http(t.baseUrl, 'POST', '/api/v1/auth/register', { body: { email, password: PASSWORD, name: email.split('@')[0] } });
    expect(res.status).toBe(201);
    return res.body.id as string;
  };
  const login = (email: string, mfaCode?: string, password = PASSWORD) =>
    http(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { email, password, ...(mfaCode === undefined ? {} : { mfaCode }) } });
  const tokenFor = async (email: string, mfaCode?: string) => {
    const res = await login(email, mfaCode);
    expect(res.status).toBe(200);
    return res.body.accessToken as string;
  };
  const enable = (token: string, body: Record<string, unknown>) => http(t.baseUrl, 'POST', '/api/v1/auth/mfa/enable', { token, body });
  const verify = (token: string, code: string, type: 'totp' | 'sms') =>
    http(t.baseUrl, 'POST', '/api/v1/auth/mfa/verify', { token, body: { code, type } });
  /** 400 (validation, after the guard let it through) for a live token; 401 for an ended session. */
  const probeSession = async (token: string) => (await http(t.baseUrl, 'POST', '/api/v1/auth/mfa/verify', { token, body: {} })).status;
  const expectError = (res: HttpResult, status: number, code: string) => {
    expect({ status: res.status, error: res.body?.error }).toEqual({ status, error: code });
  };
  const auditRows = (userId: string): Promise<Array<{ action: string; result: string; details: unknown; metadata: unknown }>> =>
    db.query(`SELECT action, result, details, metadata FROM audit_logs WHERE user_id = $1 AND action LIKE 'auth.mfa.%' ORDER BY seq`, [
      userId,
    ]);

  describe('TOTP', () => {
    const email = 'alice.totp@example.com';
    let userId: string;
    let token: string;
    let otherSessionToken: string;
    let secret: string;
    let backupCodes: string[];
    let enrollmentCode: string;

    beforeAll(async () => {
      userId = await register(email);
      token = await tokenFor(email);
      otherSessionToken = await tokenFor(email);
    });

    it('enable returns the seed, a PNG QR code of the otpauth URI and ten backup codes', async () => {
      const res = await enable(token, { type: 'totp' });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual(['backupCodes', 'qrCode', 'secret']);
      secret = res.body.secret;
      backupCodes = res.body.backupCodes;
      expect(secret).toMatch(/^[A-Z2-7]{32}$/);
      expect(res.body.qrCode).toMatch(/^data:image\/png;base64,[A-Za-z0-9+/]+=*$/);
      expect(backupCodes).toHaveLength(10);
      expect(new Set(backupCodes).size).toBe(10);
      for (const code of backupCodes) expect(code).toMatch(/^[a-z0-9]{4}-[a-z0-9]{4}$/);
    });

    it('stores the seed only encrypted and the backup codes only hashed', async () => {
      const [row] = await db.query(`SELECT * FROM user_mfa WHERE user_id = $1`, [userId]);
      expect(JSON.stringify(row)).not.toContain(secret);
      expect(row.pending_secret_ciphertext).toMatch(/^v1\./);
      const codes: Array<{ code_hash: string }> = await db.query(`SELECT code_hash FROM mfa_backup_codes WHERE user_id = $1`, [userId]);
      expect(codes).toHaveLength(10);
      const stored = JSON.stringify(codes);
      for (const code of backupCodes) expect(stored).not.toContain(code);
    });

    it('is pending until verified: login needs no code yet and mfaEnabled stays false', async () => {
      const res = await login(email);
      expect(res.status).toBe(200);
      expect(res.body.user.mfaEnabled).toBe(false);
    });

    it('refuses a wrong code with 401 MFA_INVALID_CODE', async () => {
      expectError(await verify(token, wrongTotp(secret), 'totp'), 401, 'MFA_INVALID_CODE');
    });

    it('verifies with a current code and activates MFA', async () => {
      enrollmentCode = totp(secret);
      const res = await verify(token, enrollmentCode, 'totp');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ verified: true, timestamp: new Date(nowMs).toISOString() });
      const [user] = await db.query(`SELECT mfa_enabled FROM users WHERE id = $1`, [userId]);
      expect(user.mfa_enabled).toBe(true);
    });

    it('ended the other sessions but not the one that enabled MFA', async () => {
      expect(await probeSession(otherSessionToken)).toBe(401);
      expect(await probeSession(token)).toBe(400);
      const ended: Array<{ n: string }> = await db.query(
        `SELECT count(*) AS n FROM sessions WHERE user_id = $1 AND status = 'terminated' AND end_reason = 'mfa_changed'`,
        [userId],
      );
      // The second login before enabling, and the one while MFA was still pending.
      expect(Number(ended[0].n)).toBe(2);
    });

    it('login now requires the code: 401 MFA_REQUIRED without it', async () => {
      expectError(await login(email), 401, 'MFA_REQUIRED');
    });

    it('the code used to verify cannot be replayed at login', async () => {
      expect((await login(email, enrollmentCode)).status).toBe(401);
    });

    it('login with a fresh code works; the same code twice is refused', async () => {
      advance(30);
      const code = totp(secret);
      const first = await login(email, code);
      expect(first.status).toBe(200);
      expect(first.body.user.mfaEnabled).toBe(true);
      token = first.body.accessToken;
      const again = await login(email, code);
      expect(again.status).toBe(401);
      expect(again.body.error).not.toBe('MFA_REQUIRED');
    });

    it('refuses a code from the previous step once a later one was used (drift window)', async () => {
      advance(30);
      expect((await login(email, totp(secret))).status).toBe(200);
      expect((await login(email, totp(secret, nowMs - 30_000))).status).toBe(401);
    });

    it('a backup code works once; the second use is refused', async () => {
      advance(30);
      const ok = await login(email, backupCodes[0]);
      expect(ok.status).toBe(200);
      expect((await login(email, backupCodes[0])).status).toBe(401);
      // Another one still works (and a successful login resets the failure count).
      expect((await login(email, backupCodes[1])).status).toBe(200);
    });

    it('an active factor is replaced only with proof of it (409 MFA_ALREADY_ENABLED otherwise)', async () => {
      expectError(await enable(token, { type: 'totp' }), 409, 'MFA_ALREADY_ENABLED');
      const wrong = await enable(token, { type: 'totp', currentCode: wrongTotp(secret) });
      expectError(wrong, 409, 'MFA_ALREADY_ENABLED');
      expect(wrong.body.details).toEqual([expect.objectContaining({ field: 'currentCode', code: 'MFA_INVALID_CODE' })]);

      advance(30);
      const replaced = await enable(token, { type: 'totp', currentCode: totp(secret) });
      expect(replaced.status).toBe(200);
      const newSecret: string = replaced.body.secret;
      expect(newSecret).not.toBe(secret);

      // Until the new factor is verified, the old one (and its backup codes) stay in force.
      advance(30);
      expect((await login(email, totp(newSecret))).status).toBe(401);
      expect((await login(email, totp(secret))).status).toBe(200);
      expect((await login(email, backupCodes[2])).status).toBe(200);

      advance(30);
      expect((await verify(token, totp(newSecret), 'totp')).status).toBe(200);
      advance(30);
      expect((await login(email, totp(secret))).status).toBe(401);
      expect((await login(email, backupCodes[3])).status).toBe(401);
      expect((await login(email, replaced.body.backupCodes[0])).status).toBe(200);
      advance(30);
      expect((await login(email, totp(newSecret))).status).toBe(200);
      secret = newSecret;
    });

    it('audited enable and verify, successes and failures, without secrets or codes', async () => {
      const rows = await auditRows(userId);
      const actions = rows.map((r) => `${r.action}:${r.result}`);
      expect(actions).toEqual(
        expect.arrayContaining([
          'auth.mfa.enable:success',
          'auth.mfa.verify:failure',
          'auth.mfa.verify:success',
          'auth.mfa.enable:failure',
          'auth.mfa.backup_code_used:success',
        ]),
      );
      expect(actions.filter((a) => a === 'auth.mfa.verify:success')).toHaveLength(2);
      const text = JSON.stringify(await db.query(`SELECT * FROM audit_logs`));
      expect(text).not.toContain(secret);
      for (const code of backupCodes) expect(text).not.toContain(code);
      expect(text).not.toContain(enrollmentCode);
    });
  });

  describe('lockout', () => {
    const email = 'bob.lockout@example.com';
    let secret: string;

    beforeAll(async () => {
      await register(email);
      const token = await tokenFor(email);
      secret = (await enable(token, { type: 'totp' })).body.secret;
      expect((await verify(token, totp(secret), 'totp')).status).toBe(200);
      advance(30);
    });

    it('wrong MFA codes count toward the lockout: after the threshold even the right code gets 401', async () => {
      for (let i = 0; i < LOCKOUT_THRESHOLD; i++) {
        const res = await login(email, wrongTotp(secret));
        expect(res.status).toBe(401);
        expect(res.body.error).not.toBe('MFA_REQUIRED');
      }
      const locked = await login(email, totp(secret));
      expect(locked.status).toBe(401);
      expect(locked.body.error).not.toBe('MFA_REQUIRED');
    });

    it('unlocks after the lockout period', async () => {
      advance(LOCKOUT_DURATION_SEC + 30);
      expect((await login(email, totp(secret))).status).toBe(200);
    });

    it('wrong codes on the authenticated verify route lock it too (a stolen token cannot brute-force the factor)', async () => {
      advance(30);
      const token = await tokenFor(email, totp(secret));
      for (let i = 0; i < LOCKOUT_THRESHOLD; i++) expectError(await verify(token, wrongTotp(secret), 'totp'), 401, 'MFA_INVALID_CODE');
      advance(30);
      const locked = await verify(token, totp(secret), 'totp');
      expectError(locked, 401, 'MFA_LOCKED');
      expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
      advance(LOCKOUT_DURATION_SEC + 30);
      expect((await verify(token, totp(secret), 'totp')).status).toBe(200);
    });
  });

  describe('concurrent replay', () => {
    it('of ten parallel logins with one TOTP code, exactly one succeeds', async () => {
      const email = 'carol.race@example.com';
      await register(email);
      const token = await tokenFor(email);
      const secret: string = (await enable(token, { type: 'totp' })).body.secret;
      expect((await verify(token, totp(secret), 'totp')).status).toBe(200);
      advance(30);
      const code = totp(secret);
      const results = await Promise.all(Array.from({ length: 10 }, () => login(email, code)));
      expect(results.map((r) => r.status).sort()).toEqual([200, ...Array(9).fill(401)]);
    });
  });

  describe('SMS', () => {
    const email = 'dave.sms@example.com';
    const phone = '+14155550100';
    let userId: string;
    let token: string;
    let otherSessionToken: string;

    beforeAll(async () => {
      userId = await register(email);
      token = await tokenFor(email);
      otherSessionToken = await tokenFor(email);
    });

    it('refuses a missing or non-E.164 phone number with 400 and details', async () => {
      for (const phoneNumber of [undefined, '4155550100', '+1 415 555 0100', '+0415555010', 'tel:+14155550100']) {
        const res = await enable(token, { type: 'sms', ...(phoneNumber === undefined ? {} : { phoneNumber }) });
        expectError(res, 400, 'VALIDATION_ERROR');
        expect(res.body.details).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'phoneNumber' })]));
      }
      expectError(await enable(token, { type: 'voice' }), 400, 'VALIDATION_ERROR');
    });

    it('enable sends a 6-digit code and returns only backup codes', async () => {
      const res = await enable(token, { type: 'sms', phoneNumber: phone });
      expect(res.status).toBe(200);
      expect(Object.keys(res.body)).toEqual(['backupCodes']);
      expect(res.body.backupCodes).toHaveLength(10);
      expect(smsCode(phone)).toMatch(/^\d{6}$/);
      const [challenge] = await db.query(`SELECT code_hash FROM mfa_sms_challenges WHERE user_id = $1`, [userId]);
      expect(challenge.code_hash).not.toContain(smsCode(phone));
    });

    it('verify with the code the sender got activates SMS MFA and ends the other sessions', async () => {
      const code = smsCode(phone)!;
      expectError(await verify(token, code === '000000' ? '000001' : '000000', 'sms'), 401, 'MFA_INVALID_CODE');
      expectError(await verify(token, code, 'totp'), 400, 'MFA_NOT_PENDING');
      expect((await verify(token, code, 'sms')).status).toBe(200);
      // Single use.
      expectError(await verify(token, code, 'sms'), 401, 'MFA_INVALID_CODE');
      expect(await probeSession(otherSessionToken)).toBe(401);
      expect(await probeSession(token)).toBe(400);
    });

    it('login requires a fresh SMS code: MFA_REQUIRED sends one, the enrollment code does not work', async () => {
      const enrollmentCode = smsCode(phone)!;
      advance(1);
      expectError(await login(email), 401, 'MFA_REQUIRED');
      const loginCode = smsCode(phone)!;
      expect(sms.lastMessageTo(phone)).toContain('verification code');
      if (loginCode !== enrollmentCode) expect((await login(email, enrollmentCode)).status).toBe(401);
      expect((await login(email, loginCode)).status).toBe(200);
      expect((await login(email, loginCode)).status).toBe(401);
    });

    it('login codes expire', async () => {
      advance(31);
      expectError(await login(email), 401, 'MFA_REQUIRED');
      const code = smsCode(phone)!;
      advance(SMS_CODE_TTL_SEC + 1);
      expect((await login(email, code)).status).toBe(401);
      advance(31);
      expectError(await login(email), 401, 'MFA_REQUIRED');
      expect((await login(email, smsCode(phone)!)).status).toBe(200);
    });
  });

  describe('SMS enrollment codes', () => {
    const email = 'erin.sms@example.com';
    const phone = '+442071838750';
    let token: string;

    beforeAll(async () => {
      await register(email);
      token = await tokenFor(email);
    });

    it('expire after SMS_CODE_TTL', async () => {
      expect((await enable(token, { type: 'sms', phoneNumber: phone })).status).toBe(200);
      const code = smsCode(phone)!;
      advance(SMS_CODE_TTL_SEC + 1);
      expectError(await verify(token, code, 'sms'), 401, 'MFA_INVALID_CODE');
    });

    it('allow only SMS_MAX_ATTEMPTS tries, after which even the right code fails', async () => {
      expect((await enable(token, { type: 'sms', phoneNumber: phone })).status).toBe(200);
      const code = smsCode(phone)!;
      const wrong = code === '999999' ? '999998' : '999999';
      for (let i = 0; i < SMS_MAX_ATTEMPTS; i++) expectError(await verify(token, wrong, 'sms'), 401, 'MFA_INVALID_CODE');
      expectError(await verify(token, code, 'sms'), 401, 'MFA_INVALID_CODE');
    });

    it('a new enrollment sends a new code that works', async () => {
      expect((await enable(token, { type: 'sms', phoneNumber: phone })).status).toBe(200);
      expect((await verify(token, smsCode(phone)!, 'sms')).status).toBe(200);
    });
  });

  it('MFA routes require authentication', async () => {
    expect((await http(t.baseUrl, 'POST', '/api/v1/auth/mfa/enable', { body: { type: 'totp' } })).status).toBe(401);
    expect((await http(t.baseUrl, 'POST', '/api/v1/auth/mfa/verify', { body: { type: 'totp', code: '123456' } })).status).toBe(401);
  });
});
