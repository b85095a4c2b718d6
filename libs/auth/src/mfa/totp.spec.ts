import * as speakeasy from 'speakeasy';
import { generateTotpSecret, isFreshTotpStep, matchTotpStep, TOTP_STEP_SECONDS, totpStepAt, totpUri } from './totp';

describe('totp', () => {
  const secret = generateTotpSecret();
  // A fixed instant in the middle of a step, so ±1 step stays unambiguous.
  const now = Date.UTC(2025, 0, 1, 12, 0, 15);
  const codeAt = (ms: number) => speakeasy.totp({ secret, encoding: 'base32', time: Math.floor(ms / 1000) });
  const step = totpStepAt(now);

  it('generates 160-bit base32 seeds, different every time', () => {
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(generateTotpSecret()).not.toBe(secret);
  });

  it('numbers 30-second steps from the epoch', () => {
    expect(TOTP_STEP_SECONDS).toBe(30);
    expect(totpStepAt(0)).toBe(0);
    expect(totpStepAt(29_999)).toBe(0);
    expect(totpStepAt(30_000)).toBe(1);
    expect(step).toBe(Math.floor(now / 30_000));
  });

  it('accepts the current code and one step of drift either side, and says which step it was', () => {
    expect(matchTotpStep(secret, codeAt(now), now)).toBe(step);
    expect(matchTotpStep(secret, codeAt(now - 30_000), now)).toBe(step - 1);
    expect(matchTotpStep(secret, codeAt(now + 30_000), now)).toBe(step + 1);
  });

  it('refuses codes two steps away, wrong codes and malformed input', () => {
    expect(matchTotpStep(secret, codeAt(now - 60_000), now)).toBeNull();
    expect(matchTotpStep(secret, codeAt(now + 60_000), now)).toBeNull();
    const wrong = String((Number(codeAt(now)) + 1) % 1_000_000).padStart(6, '0');
    expect(matchTotpStep(secret, wrong, now)).toBeNull();
    for (const bad of ['', '12345', '1234567', '12 345', '+12345', 'abcdef', ` ${codeAt(now)}`]) {
      expect(matchTotpStep(secret, bad, now)).toBeNull();
    }
  });

  it('refuses a code from another seed', () => {
    expect(matchTotpStep(generateTotpSecret(), codeAt(now), now)).toBeNull();
  });

  describe('replay protection', () => {
    it('accepts any step when none was accepted yet', () => {
      expect(isFreshTotpStep(step, null)).toBe(true);
    });

    it('accepts only steps strictly after the last accepted one', () => {
      expect(isFreshTotpStep(step, step)).toBe(false);
      expect(isFreshTotpStep(step - 1, step)).toBe(false);
      expect(isFreshTotpStep(step + 1, step)).toBe(true);
    });

    it('refuses the same code used twice, even when the clock moved into the next step', () => {
      const code = codeAt(now);
      const first = matchTotpStep(secret, code, now)!;
      expect(isFreshTotpStep(first, null)).toBe(true);
      const again = matchTotpStep(secret, code, now + 30_000)!;
      expect(again).toBe(first);
      expect(isFreshTotpStep(again, first)).toBe(false);
      // ...while the next code is fine.
      const next = matchTotpStep(secret, codeAt(now + 30_000), now + 30_000)!;
      expect(isFreshTotpStep(next, first)).toBe(true);
    });

    it('refuses an older code (drift window) once a newer step was accepted', () => {
      const newer = matchTotpStep(secret, codeAt(now), now)!;
      const older = matchTotpStep(secret, codeAt(now - 30_000), now)!;
      expect(isFreshTotpStep(older, newer)).toBe(false);
    });
  });

  it('builds an otpauth URI with issuer, label and the seed', () => {
    const uri = new URL(totpUri(secret, 'Secure MCP Server', 'alice@example.com'));
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe('/Secure MCP Server:alice@example.com');
    expect(uri.searchParams.get('secret')).toBe(secret);
    expect(uri.searchParams.get('issuer')).toBe('Secure MCP Server');
    expect(uri.searchParams.get('period')).toBe('30');
    expect(uri.searchParams.get('digits')).toBe('6');
  });
});
