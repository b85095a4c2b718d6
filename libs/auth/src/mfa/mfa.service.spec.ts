import * as speakeasy from 'speakeasy';
import * as QRCode from 'qrcode';
import { AppException, loadConfig, Principal } from '@app/core';
import type { Transaction } from '@app/database';
import type { SessionService } from '@app/sessions';
import { FakeAudit } from '../testing/fake-audit';
import { InMemoryBackupCodeRepository, InMemorySmsChallengeRepository, InMemoryUserMfaRepository } from '../testing/in-memory-mfa';
import { FakeUnitOfWork, InMemoryUsersRepository, TestClock, usersServiceOver } from '../testing/in-memory-users';
import type { BackupCodeRepository } from './backup-code.repository';
import { BackupCodeService } from './backup-code.service';
import { MfaCrypto } from './mfa-crypto';
import { MfaErrorCode } from './mfa-error-codes';
import { MfaService } from './mfa.service';
import type { SmsChallengeRepository } from './sms-challenge.repository';
import { SmsChallengeService } from './sms-challenge.service';
import type { SmsSender } from './sms/sms-sender';
import type { UserMfaRepository } from './user-mfa.repository';

// Rendering the PNG is the library's work (the e2e suite checks the image); here, what is encoded.
jest.mock('qrcode', () => ({
  toDataURL: jest.fn(async (text: string) => `data:image/png;base64,${Buffer.from(text).toString('base64')}`),
}));

const CALLER = {
  principal: {
    userId: 'usr_alice',
    email: 'alice@example.com',
    sessionId: 'ses_current',
    roles: ['user'],
    permissions: [],
    via: 'jwt',
  } as Principal,
  ipAddress: '203.0.113.9',
  userAgent: 'unit',
};
const PHONE = '+15551234567';

/** The TOTP code of `secret` at the clock's time plus `stepsLater` steps. */
const totpCode = (secret: string, clock: TestClock, stepsLater = 0) =>
  speakeasy.totp({ secret, encoding: 'base32', step: 30, time: Math.floor(clock.nowMs() / 1000) + stepsLater * 30 });

async function refusal(promise: Promise<unknown>): Promise<AppException> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AppException) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

function setup() {
  const config = loadConfig({ NODE_ENV: 'test', ENCRYPTION_KEY: 'k'.repeat(40), LOCKOUT_THRESHOLD: '3', SMS_MAX_ATTEMPTS: '2' });
  const clock = new TestClock();
  const uow = new FakeUnitOfWork();
  const usersTable = new InMemoryUsersRepository();
  usersTable.add({ id: 'usr_alice', email: 'alice@example.com' }, 'hash');
  const factors = new InMemoryUserMfaRepository();
  const backupTable = new InMemoryBackupCodeRepository();
  const smsTable = new InMemorySmsChallengeRepository();
  const crypto = new MfaCrypto(config);
  const sent: Array<{ to: string; text: string }> = [];
  const sender = { send: async (to: string, text: string) => void sent.push({ to, text }) };
  const sessions = { endAllForUser: jest.fn(async (_tx: Transaction, _userId: string, _reason: string, _opts: unknown) => 2) };
  const audit = new FakeAudit();
  const service = new MfaService(
    uow.asUnitOfWork(),
    factors as unknown as UserMfaRepository,
    usersServiceOver(usersTable),
    config,
    clock,
    crypto,
    new BackupCodeService(backupTable as unknown as BackupCodeRepository, crypto, clock),
    new SmsChallengeService(smsTable as unknown as SmsChallengeRepository, config, crypto, clock),
    sender as unknown as SmsSender,
    audit.asAuditService(),
    sessions as unknown as SessionService,
  );
  /** Runs a login second-factor check in a transaction of its own. */
  const loginWith = (code: string) => uow.run((tx) => service.verifyLoginCode(tx, 'usr_alice', code));
  /** The code in the last SMS. */
  const lastSmsCode = () => /^(\d{6}) /.exec(sent[sent.length - 1].text)![1];
  return { service, clock, usersTable, factors, backupTable, smsTable, sent, sessions, audit, loginWith, lastSmsCode };
}

/** Enrolls and activates TOTP; returns the seed and the backup codes. */
async function withTotp(ctx: ReturnType<typeof setup>) {
  const enabled = await ctx.service.enable(CALLER, { type: 'totp' });
  await ctx.service.verify(CALLER, 'totp', totpCode(enabled.secret!, ctx.clock));
  return { secret: enabled.secret!, backupCodes: enabled.backupCodes };
}

describe('MfaService', () => {
  it('enable starts a pending TOTP enrollment: seed, QR code and backup codes, nothing active yet', async () => {
    const ctx = setup();
    const result = await ctx.service.enable(CALLER, { type: 'totp' });
    expect(result.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(QRCode.toDataURL).toHaveBeenCalledTimes(1);
    const encoded = new URL(jest.mocked(QRCode.toDataURL).mock.calls[0][0] as string);
    expect([encoded.protocol, encoded.searchParams.get('secret'), encoded.searchParams.get('issuer')]).toEqual([
      'otpauth:',
      result.secret,
      'Secure MCP Server',
    ]);
    expect([encoded.host, decodeURIComponent(encoded.pathname)]).toEqual(['totp', '/Secure MCP Server:alice@example.com']);
    expect(result.backupCodes).toHaveLength(10);
    const factor = ctx.factors.rows.get('usr_alice')!;
    expect(factor).toMatchObject({ type: null, verifiedAt: null, pendingType: 'totp' });
    // The seed is stored encrypted, never as is.
    expect(factor.pendingSecretCiphertext).not.toContain(result.secret);
    expect(ctx.usersTable.get('usr_alice').mfaEnabled).toBe(false);
    expect(ctx.backupTable.rows.every((row) => row.pending)).toBe(true);
    expect(ctx.audit.last('auth.mfa.enable').entry.details).toMatchObject({
      type: 'totp',
      status: 'pending_verification',
      replacing: false,
    });
  });

  it('verify with the right code activates the factor, marks the user and ends the other sessions', async () => {
    const ctx = setup();
    const { secret } = await withTotp(ctx);
    expect(ctx.factors.rows.get('usr_alice')).toMatchObject({ type: 'totp', pendingType: null, verifiedAt: ctx.clock.now() });
    expect(ctx.usersTable.get('usr_alice').mfaEnabled).toBe(true);
    expect(ctx.backupTable.rows.every((row) => !row.pending)).toBe(true);
    expect(ctx.sessions.endAllForUser).toHaveBeenCalledWith(expect.anything(), 'usr_alice', 'mfa_changed', {
      exceptSessionId: 'ses_current',
      endedBy: 'usr_alice',
    });
    const record = ctx.audit.last('auth.mfa.verify');
    expect(record.entry.details).toEqual({ type: 'totp', activated: true, replacedType: null, endedSessions: 2 });
    expect(secret).toBeTruthy();
  });

  it('verify with a wrong code refuses and activates nothing', async () => {
    const ctx = setup();
    const enabled = await ctx.service.enable(CALLER, { type: 'totp' });
    const wrong = totpCode(enabled.secret!, ctx.clock, 5);
    const error = await refusal(ctx.service.verify(CALLER, 'totp', wrong));
    expect([error.getStatus(), error.code]).toEqual([401, MfaErrorCode.MFA_INVALID_CODE]);
    expect(ctx.factors.rows.get('usr_alice')).toMatchObject({ type: null, pendingType: 'totp' });
    expect(ctx.usersTable.get('usr_alice').mfaEnabled).toBe(false);
    expect(ctx.audit.last('auth.mfa.verify').entry.result).toBe('failure');
  });

  it('does not accept the enrollment code again at login, and accepts each later code once', async () => {
    const ctx = setup();
    const { secret } = await withTotp(ctx);
    expect(await ctx.loginWith(totpCode(secret, ctx.clock))).toBe(false);
    ctx.clock.advance(30_000);
    const next = totpCode(secret, ctx.clock);
    expect(await ctx.loginWith(next)).toBe(true);
    expect(await ctx.loginWith(next)).toBe(false);
    // The users row is locked before the factor is read.
    expect(ctx.usersTable.locks.at(-1)?.[1]).toBe('usr_alice');
  });

  it('accepts each backup code once, only after the enrollment is verified', async () => {
    const ctx = setup();
    const enabled = await ctx.service.enable(CALLER, { type: 'totp' });
    expect(await ctx.loginWith(enabled.backupCodes[0])).toBe(false);
    await ctx.service.verify(CALLER, 'totp', totpCode(enabled.secret!, ctx.clock));

    expect(await ctx.loginWith(enabled.backupCodes[0])).toBe(true);
    expect(ctx.audit.last('auth.mfa.backup_code_used').entry.details).toEqual({ remaining: 9 });
    expect(await ctx.loginWith(enabled.backupCodes[0])).toBe(false);
    expect(await ctx.loginWith(enabled.backupCodes[1])).toBe(true);
    expect(await ctx.loginWith('zzzz-zzzz')).toBe(false);
  });

  it('refuses to replace an active factor without proof of it', async () => {
    const ctx = setup();
    await withTotp(ctx);
    const error = await refusal(ctx.service.enable(CALLER, { type: 'totp' }));
    expect([error.getStatus(), error.code]).toEqual([409, MfaErrorCode.MFA_ALREADY_ENABLED]);
    expect(ctx.factors.rows.get('usr_alice')?.pendingType).toBeNull();
  });

  it('locks verification of the active factor after the threshold of wrong codes', async () => {
    const ctx = setup();
    const { secret } = await withTotp(ctx);
    const wrong = totpCode(secret, ctx.clock, 10);
    for (let i = 0; i < 3; i++) expect((await refusal(ctx.service.verify(CALLER, 'totp', wrong))).code).toBe(MfaErrorCode.MFA_INVALID_CODE);
    ctx.clock.advance(30_000);
    const locked = await refusal(ctx.service.verify(CALLER, 'totp', totpCode(secret, ctx.clock)));
    expect([locked.getStatus(), locked.code]).toEqual([401, MfaErrorCode.MFA_LOCKED]);
    expect(Number(locked.headers['Retry-After'])).toBeGreaterThan(0);
  });

  it('enrolls SMS with the texted code; a challenge allows only SMS_MAX_ATTEMPTS tries', async () => {
    const ctx = setup();
    await ctx.service.enable(CALLER, { type: 'sms', phoneNumber: PHONE });
    expect(ctx.sent.map((s) => s.to)).toEqual([PHONE]);
    const code = ctx.lastSmsCode();
    const wrong = code === '000000' ? '111111' : '000000';
    await refusal(ctx.service.verify(CALLER, 'sms', wrong));
    await refusal(ctx.service.verify(CALLER, 'sms', wrong));
    // Out of tries: even the right code no longer works for this challenge.
    expect((await refusal(ctx.service.verify(CALLER, 'sms', code))).code).toBe(MfaErrorCode.MFA_INVALID_CODE);

    await ctx.service.enable(CALLER, { type: 'sms', phoneNumber: PHONE });
    await ctx.service.verify(CALLER, 'sms', ctx.lastSmsCode());
    expect(ctx.factors.rows.get('usr_alice')).toMatchObject({ type: 'sms', phone: PHONE });
    expect(ctx.smsTable.rows).toHaveLength(0);
  });

  it('reset removes the factor, the codes and the flag', async () => {
    const ctx = setup();
    await withTotp(ctx);
    const removed = await new FakeUnitOfWork().run((tx) => ctx.service.reset(tx, 'usr_alice'));
    expect(removed).toEqual({ type: 'totp', pendingType: null });
    expect(ctx.factors.rows.has('usr_alice')).toBe(false);
    expect(ctx.backupTable.rows).toHaveLength(0);
    expect(ctx.usersTable.get('usr_alice').mfaEnabled).toBe(false);
  });
});
