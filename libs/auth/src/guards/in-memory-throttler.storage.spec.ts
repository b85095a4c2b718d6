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

  it('appends each hit to its budget in place, however many hits the window holds (no copy per hit)', () => {
    const storage = new InMemoryThrottlerStorage();
    const t0 = 20_000_000;
    const budgetOf = () => (storage as unknown as { budgets: Map<string, { expiries: number[] }> }).budgets.get('busy')!;
    storage.hit('busy', ttl, 10_000_000, ttl, t0);
    const list = budgetOf().expiries;
    let last = storage.hit('busy', ttl, 10_000_000, ttl, t0);
    for (let i = 2; i < 200_000; i++) last = storage.hit('busy', ttl, 10_000_000, ttl, t0 + i / 1000);
    expect(last).toMatchObject({ totalHits: 200_000, isBlocked: false });
    // The library's storage copies the whole list on every hit (the cost grows with the hits the
    // window holds); here the one list grows in place. Speed itself is measured in bench/, not here.
    expect(budgetOf().expiries).toBe(list);
    storage.onApplicationShutdown();
  });
});
