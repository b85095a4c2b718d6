import { commonPasswordForms, isCommonPassword, PASSWORD_MAX_BYTES, passwordProblems } from './password-policy';

describe('password policy', () => {
  it('accepts a strong password', () => {
    expect(passwordProblems('Vq7$kLm2pXz9')).toEqual([]);
    expect(passwordProblems('correct&Horse7battery')).toEqual([]);
  });

  it.each([
    ['too short', 'Aa1!aaaaaaa'],
    ['no upper case', 'vq7$klm2pxz9'],
    ['no lower case', 'VQ7$KLM2PXZ9'],
    ['no digit', 'Vqx$kLmapXzq'],
    ['no special character', 'Vq7xkLm2pXz9'],
    ['a character outside the allowed set', 'Vq7$kLm2pXz9#'],
    ['a space', 'Vq7$kLm2 pXz9'],
  ])('refuses a password with %s', (_why, password) => {
    expect(passwordProblems(password)).toEqual([expect.stringContaining('at least 12 characters')]);
  });

  it('refuses more than 72 bytes (bcrypt would ignore the rest)', () => {
    const exactly72 = `Aa1!${'x'.repeat(PASSWORD_MAX_BYTES - 4)}`;
    expect(passwordProblems(exactly72)).toEqual([]);
    expect(passwordProblems(`${exactly72}y`)).toEqual([`password must be at most ${PASSWORD_MAX_BYTES} bytes long`]);
  });

  it('counts bytes, not characters', () => {
    const multiByte = `Aa1!${'é'.repeat(40)}`;
    expect(passwordProblems(multiByte)).toContain(`password must be at most ${PASSWORD_MAX_BYTES} bytes long`);
  });

  it.each(['Password123!', 'P@ssw0rd1234', 'Summer2024!!', 'Welcome123!!', '2024Football!', 'Qwertyuiop1!', 'Iloveyou123!'])(
    'refuses the common password %s',
    (password) => {
      expect(isCommonPassword(password)).toBe(true);
      expect(passwordProblems(password)).toEqual(['password is too common; choose one that is harder to guess']);
    },
  );

  it('derives the forms compared with the list', () => {
    expect(commonPasswordForms('P@ssw0rd1234')).toEqual(expect.arrayContaining(['p@ssw0rd1234', 'p@ssw0rd', 'password']));
    expect(commonPasswordForms('Summer2024!!')).toContain('summer');
  });

  it('refuses non-strings', () => {
    expect(passwordProblems(undefined)).toEqual(['password must be a string']);
    expect(passwordProblems(123456789012)).toEqual(['password must be a string']);
  });
});
