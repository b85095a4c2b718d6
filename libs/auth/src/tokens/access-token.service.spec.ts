import { createHmac } from 'node:crypto';
import { AppConfig, Clock, loadConfig } from '@app/core';
import { AccessTokenService } from './access-token.service';

const SECRET = 'unit-test-secret-unit-test-secret-0123456789';

class FixedClock extends Clock {
  constructor(public ms: number) {
    super();
  }
  override now(): Date {
    return new Date(this.ms);
  }
  override nowMs(): number {
    return this.ms;
  }
}

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const hs256 = (input: string, secret = SECRET) => createHmac('sha256', secret).update(input).digest('base64url');

describe('AccessTokenService', () => {
  let config: AppConfig;
  let clock: FixedClock;
  let service: AccessTokenService;

  beforeEach(() => {
    config = loadConfig({ NODE_ENV: 'test', JWT_SECRET: SECRET, ACCESS_TOKEN_TTL: '900' });
    clock = new FixedClock(Date.UTC(2030, 0, 1));
    service = new AccessTokenService(config, clock);
  });

  const sign = () => service.sign({ userId: 'usr_1', sessionId: 'ses_1', roles: ['user'] });
  const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
  /** A token with the given header and claims, signed with the right key (unless told otherwise). */
  const forge = (header: unknown, claims: unknown, secret = SECRET) => {
    const input = `${b64(header)}.${b64(claims)}`;
    return `${input}.${hs256(input, secret)}`;
  };

  it('signs HS256 tokens with sub, sid, roles, typ, issuer, audience and the configured lifetime', () => {
    const { token, expiresIn } = sign();
    expect(expiresIn).toBe(900);
    expect(JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString())).toEqual({ alg: 'HS256', typ: 'JWT' });
    const claims = claimsOf(token);
    expect(claims).toMatchObject({
      sub: 'usr_1',
      sid: 'ses_1',
      roles: ['user'],
      typ: 'access',
      iss: config.auth.jwtIssuer,
      aud: config.auth.jwtAudience,
    });
    expect(claims.exp - claims.iat).toBe(900);
    expect(service.verify(token)).toMatchObject({ sub: 'usr_1', sid: 'ses_1' });
  });

  it('refuses an expired token, following the clock', () => {
    const { token } = sign();
    clock.ms += 899_000;
    expect(service.verify(token)).not.toBeNull();
    clock.ms += 1_000;
    expect(service.verify(token)).toBeNull();
  });

  it('refuses alg none', () => {
    const claims = claimsOf(sign().token);
    expect(service.verify(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`)).toBeNull();
    expect(service.verify(`${b64({ alg: 'none' })}.${b64(claims)}.${hs256('x')}`)).toBeNull();
  });

  it('refuses another algorithm or extra header fields even when the HMAC matches', () => {
    const claims = claimsOf(sign().token);
    expect(service.verify(forge({ alg: 'HS512', typ: 'JWT' }, claims))).toBeNull();
    expect(service.verify(forge({ alg: 'HS256', typ: 'JWT', kid: 'x' }, claims))).toBeNull();
    expect(service.verify(forge({ alg: 'HS256', typ: 'JWT' }, claims))).not.toBeNull();
  });

  it('refuses a wrong signature or a tampered payload', () => {
    const claims = claimsOf(sign().token);
    expect(service.verify(forge({ alg: 'HS256', typ: 'JWT' }, claims, 'another-secret-another-secret-0123456789'))).toBeNull();
    const [header, , signature] = sign().token.split('.');
    expect(service.verify(`${header}.${b64({ ...claims, roles: ['admin'] })}.${signature}`)).toBeNull();
  });

  it.each([
    ['wrong audience', { aud: 'someone-else' }],
    ['audience list', { aud: ['secure-mcp-api'] }],
    ['wrong issuer', { iss: 'evil' }],
    ['refresh type', { typ: 'refresh' }],
    ['no type', { typ: undefined }],
    ['no session', { sid: undefined }],
    ['unknown role', { roles: ['root'] }],
    ['issued in the future', { iat: Date.UTC(2030, 0, 1) / 1000 + 3600 }],
    ['no expiry', { exp: undefined }],
  ])('refuses a correctly signed token with %s', (_why, change) => {
    const claims = { ...claimsOf(sign().token), ...change };
    expect(service.verify(forge({ alg: 'HS256', typ: 'JWT' }, claims))).toBeNull();
  });

  it('honours nbf: refused while in the future, accepted once reached, refused when not a number', () => {
    const now = Date.UTC(2030, 0, 1) / 1000;
    const header = { alg: 'HS256', typ: 'JWT' };
    const claims = claimsOf(sign().token);
    expect(service.verify(forge(header, { ...claims, nbf: now + 1 }))).toBeNull();
    expect(service.verify(forge(header, { ...claims, nbf: now + 3600 }))).toBeNull();
    expect(service.verify(forge(header, { ...claims, nbf: String(now - 10) }))).toBeNull();
    expect(service.verify(forge(header, { ...claims, nbf: now }))).toMatchObject({ sub: 'usr_1' });
    const later = forge(header, { ...claims, nbf: now + 60 });
    clock.ms += 60_000;
    expect(service.verify(later)).toMatchObject({ sub: 'usr_1' });
  });

  it('remembers a verified token, yet still refuses it once expired and never lets a changed token through', () => {
    const { token } = sign();
    const first = service.verify(token);
    expect(first).toMatchObject({ sub: 'usr_1', sid: 'ses_1' });
    // The same token again: the same (frozen) claims, shared by every request that sends it.
    expect(service.verify(token)).toBe(first);
    expect(Object.isFrozen(first) && Object.isFrozen(first!.roles)).toBe(true);
    // A token that differs in any byte from the remembered one goes through the full check.
    const [header, payload, signature] = token.split('.');
    const flipped = `${signature.slice(0, -1)}${signature.endsWith('A') ? 'B' : 'A'}`;
    expect(service.verify(`${header}.${payload}.${flipped}`)).toBeNull();
    expect(service.verify(`${header}.${b64({ ...claimsOf(token), roles: ['admin'] })}.${signature}`)).toBeNull();
    // Expiry follows the clock on every call, remembered or not.
    clock.ms += 900_000;
    expect(service.verify(token)).toBeNull();
    clock.ms -= 1_000;
    expect(service.verify(token)).toMatchObject({ sub: 'usr_1' });
  });

  it('remembers no token another service instance (another secret) signed', () => {
    const { token } = sign();
    expect(service.verify(token)).not.toBeNull();
    const other = new AccessTokenService(loadConfig({ NODE_ENV: 'test', JWT_SECRET: `${SECRET}-other`, ACCESS_TOKEN_TTL: '900' }), clock);
    expect(other.verify(token)).toBeNull();
  });

  it('refuses garbage without throwing', () => {
    for (const junk of ['', 'abc', 'a.b', 'a.b.c', '...', 'x'.repeat(5000), `${sign().token}.extra`]) {
      expect(service.verify(junk)).toBeNull();
    }
  });
});
