import { boundedJsonObjectProblem, CONTEXT_JSON_LIMITS } from './bounded-json';

function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let i = 1; i < levels; i++) value = { inner: value };
  return value;
}

describe('boundedJsonObjectProblem', () => {
  it('accepts objects within the bounds, empty ones included', () => {
    expect(boundedJsonObjectProblem({})).toBeNull();
    expect(boundedJsonObjectProblem(nested(CONTEXT_JSON_LIMITS.maxDepth))).toBeNull();
    expect(boundedJsonObjectProblem({ a: [1, { b: [2] }], s: 'x' })).toBeNull();
  });

  it('refuses what is not an object', () => {
    for (const value of [null, undefined, [], [1], 'x', 3, true]) {
      expect(boundedJsonObjectProblem(value)).toBe('must be a JSON object');
    }
  });

  it('counts arrays and objects alike as levels', () => {
    expect(boundedJsonObjectProblem(nested(CONTEXT_JSON_LIMITS.maxDepth + 1))).toBe('must not nest deeper than 5 levels');
    expect(boundedJsonObjectProblem({ a: [[[[1]]]] })).toBeNull();
    expect(boundedJsonObjectProblem({ a: [[[[[1]]]]] })).toBe('must not nest deeper than 5 levels');
  });

  it('stops early on absurd nesting (no stack overflow)', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(boundedJsonObjectProblem({ deep })).toBe('must not nest deeper than 5 levels');
  });

  it('measures size in UTF-8 bytes of the JSON', () => {
    const overhead = JSON.stringify({ s: '' }).length;
    expect(boundedJsonObjectProblem({ s: 'x'.repeat(CONTEXT_JSON_LIMITS.maxBytes - overhead) })).toBeNull();
    expect(boundedJsonObjectProblem({ s: 'x'.repeat(CONTEXT_JSON_LIMITS.maxBytes - overhead + 1) })).toBe(
      'must not exceed 16384 bytes as JSON',
    );
    // Three bytes per character in UTF-8.
    expect(boundedJsonObjectProblem({ s: '€'.repeat(6000) })).toBe('must not exceed 16384 bytes as JSON');
  });
});
