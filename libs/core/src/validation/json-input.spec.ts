import { JSON_INPUT_LIMITS, nestsDeeperThan, parseJsonInput, unsafeStrings } from './json-input';

const nested = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

describe('parseJsonInput', () => {
  it('accepts ordinary JSON, escapes and well-formed surrogate pairs included', () => {
    const result = parseJsonInput('{"name":"caf\\u00e9 \\ud83d\\ude00","list":[1,{"constructor":"x"}],"raw":"\\\\u0000"}');
    expect(result).toEqual({ ok: true, value: { name: 'café 😀', list: [1, { constructor: 'x' }], raw: '\\u0000' } });
  });

  it('refuses nesting deeper than the limit before parsing, and accepts exactly the limit', () => {
    expect(parseJsonInput(nested(JSON_INPUT_LIMITS.maxDepth)).ok).toBe(true);
    const refused = parseJsonInput(`{"email":${nested(1500)}}`);
    expect(refused).toEqual({ ok: false, reason: 'depth', details: [expect.objectContaining({ field: 'email', code: 'maxDepth' })] });
    const exactlyOver = parseJsonInput(`{"ok":1,"list":${nested(JSON_INPUT_LIMITS.maxDepth)}}`);
    expect(exactlyOver).toEqual({ ok: false, reason: 'depth', details: [expect.objectContaining({ field: 'list', code: 'maxDepth' })] });
    expect(parseJsonInput(`{"list":${nested(JSON_INPUT_LIMITS.maxDepth - 1)}}`).ok).toBe(true);
    expect(parseJsonInput(nested(1500))).toEqual({
      ok: false,
      reason: 'depth',
      details: [{ message: expect.any(String), code: 'maxDepth' }],
    });
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    const inString = JSON.stringify({ text: `"${'['.repeat(200)}\\"` });
    expect(nestsDeeperThan(inString, 3)).toBe(false);
    expect(nestsDeeperThan('[[["a\\\\"],[[1]]]]', 3)).toBe(true);
    expect(nestsDeeperThan('[[["a\\\\"],[[1]]]]', 4)).toBe(false);
  });

  it('names every NUL, lone surrogate and polluting key with its path', () => {
    const result = parseJsonInput(
      '{"email":"a\\ud800@x.io","items":[{"name":"ok"},{"name":"n\\u0000l"}],"a\\u0000b":1,"deep":{"__proto__":{"admin":true}},"c":{"constructor":{"prototype":{}}},"low":"\\udc00"}',
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toBe('content');
    expect(result.details.map((d) => `${d.field}:${d.code}`).sort()).toEqual([
      'a\uFFFDb:nulCharacter',
      'c.constructor:forbiddenKey',
      'deep.__proto__:forbiddenKey',
      'email:loneSurrogate',
      'items.1.name:nulCharacter',
      'low:loneSurrogate',
    ]);
  });

  it('reports a syntax error without details', () => {
    expect(parseJsonInput('')).toEqual({ ok: false, reason: 'syntax', details: [] });
    expect(parseJsonInput('{"a":')).toEqual({ ok: false, reason: 'syntax', details: [] });
  });
});

describe('unsafeStrings', () => {
  it('checks values, repeated values and keys of a flat map', () => {
    expect(unsafeStrings({ id: 'ctx_1', search: ['a', 'b\u0000'], ['k\u0000']: 'v' }).map((d) => `${d.field}:${d.code}`)).toEqual([
      'search:nulCharacter',
      'k\uFFFD:nulCharacter',
    ]);
    expect(unsafeStrings({ id: 'fine' })).toEqual([]);
    expect(unsafeStrings(undefined)).toEqual([]);
  });
});
