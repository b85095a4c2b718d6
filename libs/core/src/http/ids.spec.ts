import { newId } from './ids';
import { newRequestId } from './request-context';

describe('newId', () => {
  it('is the prefix and 96 random bits in base64url', () => {
    expect(newId('exe')).toMatch(/^exe_[A-Za-z0-9_-]{16}$/);
  });

  it('never repeats across refills of the shared random pool (interleaved with request ids)', () => {
    const seen = new Set<string>();
    // 4 KiB pool, 12 bytes an id: 3,000 ids refill it several times.
    for (let i = 0; i < 3_000; i++) {
      seen.add(newId('aud').slice(4));
      seen.add(newRequestId().slice(4));
    }
    expect(seen.size).toBe(6_000);
  });
});
