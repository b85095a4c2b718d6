import { InMemoryThrottlerStorage } from './in-memory-throttler.storage';

describe('InMemoryThrottlerStorage', () => {
  const ttl = 60_000;

  it('counts hits inside the sliding window and blocks the one over the limit for the block duration', () => {
    const storage = new InMemoryThrottlerStorage();
    const t0 = 1_000_000;
    expect(storage.hit('k', ttl, 2, ttl, t0)).toMatchObject({ totalHits: 1, isBlocked: false, timeToExpire: 60 });
    expect(storage.hit('k', ttl, 2, ttl, t0 + 30_000)).toMatchObject({ totalHits: 2, isBlocked: false, timeToExpire: 30 });
    expect(storage.hit('k', ttl, 2, ttl, t0 + 31_000)).toMatchObject({ isBlocked: true, timeToBlockExpire: 60 });
    // Still blocked although the first hit has left the window: the block lasts its duration.
    expect(storage.hit('k', ttl, 2, ttl, t0 + 61_000)).toMatchObject({ isBlocked: true, timeToBlockExpire: 30 });
    // After the block the budget starts afresh.
    expect(storage.hit('k', ttl, 2, ttl, t0 + 91_001)).toMatchObject({ totalHits: 1, isBlocked: false });
    storage.onApplicationShutdown();
  });

  it('lets hits expire one by one (a sliding window, not a fixed one)', () => {
    const storage = new InMemoryThrottlerStorage();
    const t0 = 5_000_000;
    storage.hit('k', ttl, 3, ttl, t0);
    storage.hit('k', ttl, 3, ttl, t0 + 20_000);
    storage.hit('k', ttl, 3, ttl, t0 + 40_000);
    // The first hit expired at t0 + 60s, so one more fits; the others still count.
    expect(storage.hit('k', ttl, 3, ttl, t0 + 60_000)).toMatchObject({ totalHits: 3, isBlocked: false });
    expect(storage.hit('k', ttl, 3, ttl, t0 + 60_001)).toMatchObject({ isBlocked: true });
    storage.onApplicationShutdown();
  });

  it('keeps budgets apart by key and forgets idle ones on sweep', () => {
    const storage = new InMemoryThrottlerStorage();
    const t0 = 9_000_000;
    storage.hit('a', ttl, 1, ttl, t0);
    expect(storage.hit('b', ttl, 1, ttl, t0)).toMatchObject({ totalHits: 1, isBlocked: false });
    expect(storage.size).toBe(2);
    storage.sweep(t0 + ttl + 1);
    expect(storage.size).toBe(0);
    storage.onApplicationShutdown();
  });

  it('costs the same per hit however many hits the window holds', () => {
    const storage = new InMemoryThrottlerStorage();
    const t0 = 20_000_000;
    const time = (from: number, count: number): number => {
      const started = process.hrtime.bigint();
      for (let i = 0; i < count; i++) storage.hit('busy', ttl, 10_000_000, ttl, from + i / 1000);
      return Number(process.hrtime.bigint() - started);
    };
    time(t0, 20_000);
    const early = time(t0 + 20, 20_000);
    time(t0 + 40, 200_000);
    const late = time(t0 + 240, 20_000);
    // The library's storage copies the whole list per hit: ten times the hits, ten times the cost.
    expect(late).toBeLessThan(early * 4);
    storage.onApplicationShutdown();
  });
});
