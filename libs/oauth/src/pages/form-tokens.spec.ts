import { FormTokens } from './form-tokens';

describe('FormTokens', () => {
  const tokens = new FormTokens('x'.repeat(48));

  it('binds the anti-forgery value to its interaction and key', () => {
    const csrf = tokens.csrf('uid-1');
    expect(tokens.checkCsrf('uid-1', csrf)).toBe(true);
    expect(tokens.checkCsrf('uid-2', csrf)).toBe(false);
    expect(new FormTokens('y'.repeat(48)).checkCsrf('uid-1', csrf)).toBe(false);
    expect(tokens.checkCsrf('uid-1', undefined)).toBe(false);
    expect(tokens.checkCsrf('uid-1', `${csrf}x`)).toBe(false);
  });

  it('opens a second-factor ticket only in its interaction, untampered and unexpired', () => {
    const ticket = tokens.mfaTicket('uid-1', 'usr_abc', 2_000);
    expect(tokens.openMfaTicket('uid-1', ticket, 1_000)).toBe('usr_abc');
    expect(tokens.openMfaTicket('uid-1', ticket, 2_000)).toBeNull();
    expect(tokens.openMfaTicket('uid-2', ticket, 1_000)).toBeNull();
    expect(tokens.openMfaTicket('uid-1', ticket.replace('usr_abc', 'usr_abd'), 1_000)).toBeNull();
    expect(tokens.openMfaTicket('uid-1', ticket.replace('.2000.', '.9000.'), 1_000)).toBeNull();
    expect(tokens.openMfaTicket('uid-1', 42, 1_000)).toBeNull();
  });
});
