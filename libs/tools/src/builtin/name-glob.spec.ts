import { globMatches, nameMatcher } from './name-glob';

/** Reference semantics: the same glob as an anchored regex (fine for the short inputs below). */
function byRegex(pattern: string, name: string): boolean {
  const source = Array.from(pattern)
    .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`, 'su').test(name);
}

describe('name glob', () => {
  it('matches globs over whole names and substrings anywhere, ignoring case', () => {
    expect(nameMatcher('*.md')('readme.md')).toBe(true);
    expect(nameMatcher('*.md')('readme.md.bak')).toBe(false);
    expect(nameMatcher('re?dme.*')('README.txt')).toBe(true);
    expect(nameMatcher('a+b')('xa+by')).toBe(true);
    expect(nameMatcher('(*)')('(x)')).toBe(true);
    expect(nameMatcher('(*)')('x')).toBe(false);
    expect(nameMatcher('?')('é')).toBe(true);
    expect(nameMatcher('?')('😀')).toBe(true);
  });

  it('agrees with the regex semantics on every short pattern and name over a small alphabet', () => {
    const alphabet = ['a', 'b', '*', '?'];
    const words = (length: number, letters: string[]): string[] =>
      length === 0 ? [''] : words(length - 1, letters).flatMap((word) => letters.map((letter) => word + letter));
    const patterns = [0, 1, 2, 3, 4].flatMap((length) => words(length, alphabet));
    const names = [0, 1, 2, 3, 4, 5].flatMap((length) => words(length, ['a', 'b']));
    const disagreements: string[] = [];
    for (const pattern of patterns) {
      for (const name of names) {
        if (globMatches(Array.from(pattern), Array.from(name)) !== byRegex(pattern, name)) disagreements.push(`${pattern} ~ ${name}`);
      }
    }
    expect(disagreements).toEqual([]);
  });

  it('needs at most (name + 1) × (pattern + 1) steps on the worst patterns', () => {
    // Counts comparisons through a Proxy over the name: every step reads one name position.
    const worst = (pattern: string, name: string): number => {
      let reads = 0;
      const chars = Array.from(name);
      const counted = new Proxy(chars, {
        get(target, key, receiver) {
          if (typeof key === 'string' && /^\d+$/.test(key)) reads += 1;
          return Reflect.get(target, key, receiver);
        },
      });
      globMatches(Array.from(pattern), counted);
      return reads;
    };
    for (const [pattern, name] of [
      ['*a*a*a*a*a*a*a*b', 'a'.repeat(52)],
      [`${'*a'.repeat(127)}*b`, 'a'.repeat(255)],
      [`${'?'.repeat(100)}*b`, 'a'.repeat(255)],
    ]) {
      expect(worst(pattern, name)).toBeLessThanOrEqual((name.length + 1) * (pattern.length + 1));
    }
  });
});
