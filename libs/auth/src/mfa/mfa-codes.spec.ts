import {
  BACKUP_CODE_COUNT,
  generateBackupCode,
  generateBackupCodes,
  generateSmsCode,
  isE164,
  isSixDigitCode,
  maskPhone,
  normalizeBackupCode,
} from './mfa-codes';

describe('mfa codes', () => {
  it('makes ten distinct backup codes of the form xxxx-xxxx without look-alike characters', () => {
    const codes = generateBackupCodes();
    expect(codes).toHaveLength(BACKUP_CODE_COUNT);
    expect(new Set(codes).size).toBe(BACKUP_CODE_COUNT);
    for (const code of codes) expect(code).toMatch(/^[a-hj-km-np-z2-9]{4}-[a-hj-km-np-z2-9]{4}$/);
  });

  it('spreads backup code characters over the alphabet', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) for (const c of generateBackupCode().replace('-', '')) seen.add(c);
    expect(seen.size).toBe(31);
  });

  it('normalises typed backup codes and refuses anything else', () => {
    expect(normalizeBackupCode('abcd-efgh')).toBe('abcd-efgh');
    expect(normalizeBackupCode(' ABCD-EFGH ')).toBe('abcd-efgh');
    expect(normalizeBackupCode('abcdefgh')).toBe('abcd-efgh');
    for (const bad of ['', '123456', 'abcd-efg', 'abcd--efgh', 'abcd-efghi', 'ab_d-efgh', 'abcd efgh']) {
      expect(normalizeBackupCode(bad)).toBeNull();
    }
  });

  it('makes 6-digit SMS codes, leading zeros kept, well spread', () => {
    const codes = Array.from({ length: 2000 }, () => generateSmsCode());
    for (const code of codes) expect(isSixDigitCode(code)).toBe(true);
    expect(new Set(codes).size).toBeGreaterThan(1990);
    expect(new Set(codes.map((c) => c[0])).size).toBe(10);
  });

  it('recognises exactly six ASCII digits', () => {
    expect(isSixDigitCode('012345')).toBe(true);
    for (const bad of ['12345', '1234567', '12345a', '١٢٣٤٥٦', ' 123456', '']) expect(isSixDigitCode(bad)).toBe(false);
  });

  it('validates E.164 phone numbers', () => {
    for (const good of ['+14155550123', '+442071838750', '+491701234567', '+12', '+123456789012345']) {
      expect(isE164(good)).toBe(true);
    }
    for (const bad of [
      '14155550123',
      '+04155550123',
      '+1 415 555 0123',
      '+1-415-555-0123',
      '+1234567890123456',
      '+',
      '+1',
      '',
      '+1415555012a',
      '+14155550123\n',
    ]) {
      expect(isE164(bad)).toBe(false);
    }
  });

  it('masks phone numbers for logs and audit records', () => {
    expect(maskPhone('+14155550123')).toBe('+1********23');
    expect(maskPhone('+12')).toBe('***');
  });
});
