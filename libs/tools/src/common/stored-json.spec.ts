import { boundedJson, toPlainJson } from './stored-json';
import { fingerprint } from './fingerprint';

describe('stored JSON', () => {
  it('makes values storable in jsonb: no NUL, no lone surrogates, plain JSON types', () => {
    const date = new Date('2026-01-02T03:04:05.000Z');
    expect(toPlainJson({ a: 'x\u0000y', b: '\ud800', c: date, d: undefined, e: [1, undefined] })).toEqual({
      a: 'x\uFFFDy',
      b: '\uFFFD',
      c: date.toISOString(),
      e: [1, null],
    });
    expect(toPlainJson(undefined)).toBeNull();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => toPlainJson(cyclic)).toThrow();
  });

  it('keeps small values whole and replaces large ones by a marked preview', () => {
    expect(JSON.parse(boundedJson({ a: 1 }, 100))).toEqual({ a: 1 });
    const big = JSON.parse(boundedJson({ text: 'x'.repeat(5000) }, 1024));
    expect(big).toMatchObject({ truncated: true, originalBytes: 5011 });
    expect(big.preview.length).toBeLessThanOrEqual(1024);
  });

  it('fingerprints equal values identically whatever their key order', () => {
    expect(fingerprint({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } })).toBe(
      fingerprint({ a: { c: null, d: [2, { e: 0, f: 1 }] }, b: 1 }),
    );
    expect(fingerprint({ a: 1 })).not.toBe(fingerprint({ a: 2 }));
  });
});
