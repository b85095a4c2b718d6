import { createHash } from 'node:crypto';
import { AuditRowContent, canonicalAuditContent, canonicalJson, computeAuditHash, GENESIS_HASH } from './audit-hash';

const content = (overrides: Partial<AuditRowContent> = {}): AuditRowContent => ({
  id: 'aud_1',
  timestamp: '2025-01-31T12:34:56.789Z',
  userId: 'usr_1',
  action: 'auth.login',
  resource: 'user:usr_1',
  details: { method: 'password', attempts: 1 },
  result: 'success',
  ipAddress: '203.0.113.7',
  userAgent: 'curl/8',
  severity: 'info',
  metadata: {},
  ...overrides,
});

describe('canonicalJson', () => {
  it('sorts keys at every depth and adds no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: true, y: null }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,{"y":null,"z":true}]},"b":1}');
  });

  it('is independent of key insertion order (jsonb gives keys back in its own order)', () => {
    expect(canonicalJson({ long_key: 1, k: 2, mid: { b: 1, a: 2 } })).toBe(canonicalJson({ mid: { a: 2, b: 1 }, k: 2, long_key: 1 }));
  });

  it('keeps array order, drops undefined members and renders non-finite numbers as null', () => {
    expect(canonicalJson({ a: [2, 1], skip: undefined, n: Number.NaN, i: Infinity })).toBe('{"a":[2,1],"i":null,"n":null}');
  });

  it('escapes strings as JSON does', () => {
    expect(canonicalJson({ 'k"ey': 'line\nbreak "quoted" é' })).toBe('{"k\\"ey":"line\\nbreak \\"quoted\\" é"}');
  });

  it('distinguishes types that print alike', () => {
    expect(canonicalJson({ v: 1 })).not.toBe(canonicalJson({ v: '1' }));
    expect(canonicalJson({ v: null })).not.toBe(canonicalJson({ v: 'null' }));
    expect(canonicalJson({ v: true })).not.toBe(canonicalJson({ v: 'true' }));
  });

  it('refuses values JSON cannot hold', () => {
    expect(() => canonicalJson({ f: () => 1 })).toThrow(TypeError);
    expect(() => canonicalJson({ b: BigInt(1) })).toThrow(TypeError);
  });
});

describe('canonicalAuditContent', () => {
  it('covers every content field, present even when empty', () => {
    const parsed = JSON.parse(canonicalAuditContent(content({ userId: null, resource: null, ipAddress: null, userAgent: null })));
    expect(Object.keys(parsed)).toEqual([
      'action',
      'details',
      'id',
      'ipAddress',
      'metadata',
      'resource',
      'result',
      'severity',
      'timestamp',
      'userAgent',
      'userId',
    ]);
    expect(parsed.userId).toBeNull();
  });

  it.each<[string, Partial<AuditRowContent>]>([
    ['a full row', {}],
    ['empty columns', { userId: null, resource: null, ipAddress: null, userAgent: null, details: {}, metadata: {} }],
    ['escapes and nesting', { action: 'a"b\\c', userAgent: 'ü\n\u2028', details: { z: [1, { y: 'é' }], a: null }, metadata: { k: true } }],
  ])('is canonicalJson of the object of its fields (%s), as every stored row was hashed', (_case, change) => {
    const c = content(change);
    expect(canonicalAuditContent(c)).toBe(
      canonicalJson({
        id: c.id,
        timestamp: c.timestamp,
        userId: c.userId ?? null,
        action: c.action,
        resource: c.resource ?? null,
        details: c.details ?? {},
        result: c.result,
        ipAddress: c.ipAddress ?? null,
        userAgent: c.userAgent ?? null,
        severity: c.severity,
        metadata: c.metadata ?? {},
      }),
    );
  });
});

describe('computeAuditHash', () => {
  it('is a SHA-256 hex digest and deterministic', () => {
    const hash = computeAuditHash(GENESIS_HASH, content());
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(computeAuditHash(GENESIS_HASH, content())).toBe(hash);
    expect(GENESIS_HASH).toBe('0'.repeat(64));
  });

  it('is SHA-256 over the previous hash, a newline and the canonical content', () => {
    const expected = createHash('sha256').update('a'.repeat(64)).update('\n').update(canonicalAuditContent(content())).digest('hex');
    expect(computeAuditHash('a'.repeat(64), content())).toBe(expected);
  });

  it('changes with the previous hash, so rows are chained', () => {
    expect(computeAuditHash('a'.repeat(64), content())).not.toBe(computeAuditHash(GENESIS_HASH, content()));
  });

  it.each<[string, Partial<AuditRowContent>]>([
    ['id', { id: 'aud_2' }],
    ['timestamp', { timestamp: '2025-01-31T12:34:56.790Z' }],
    ['userId', { userId: 'usr_2' }],
    ['action', { action: 'auth.logout' }],
    ['resource', { resource: null }],
    ['details', { details: { method: 'password', attempts: 2 } }],
    ['result', { result: 'failure' }],
    ['ipAddress', { ipAddress: '203.0.113.8' }],
    ['userAgent', { userAgent: 'curl/9' }],
    ['severity', { severity: 'warning' }],
    ['metadata', { metadata: { requestId: 'req_1' } }],
  ])('changes when %s changes', (_field, change) => {
    expect(computeAuditHash(GENESIS_HASH, content(change))).not.toBe(computeAuditHash(GENESIS_HASH, content()));
  });

  it('does not depend on key order inside details', () => {
    expect(computeAuditHash(GENESIS_HASH, content({ details: { attempts: 1, method: 'password' } }))).toBe(
      computeAuditHash(GENESIS_HASH, content()),
    );
  });

  it('links a chain: each hash feeds the next', () => {
    const first = computeAuditHash(GENESIS_HASH, content({ id: 'aud_1' }));
    const second = computeAuditHash(first, content({ id: 'aud_2' }));
    const forged = computeAuditHash(GENESIS_HASH, content({ id: 'aud_2' }));
    expect(second).not.toBe(forged);
  });
});
