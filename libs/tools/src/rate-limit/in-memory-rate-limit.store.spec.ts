import { InMemoryRateLimitStore } from './in-memory-rate-limit.store';

describe('InMemoryRateLimitStore', () => {
  it('allows `limit` calls per window, then refuses until the window ends', async () => {
    const store = new InMemoryRateLimitStore();
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await store.hit('k', 3, 60_000, 1_000 + i));
    expect(decisions.map((d) => [d.allowed, d.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
    ]);
    expect(decisions[3].resetInMs).toBe(60_000 - 3);
    expect((await store.hit('k', 3, 60_000, 61_000)).allowed).toBe(true);
  });

  it('keeps budgets apart per key', async () => {
    const store = new InMemoryRateLimitStore();
    expect((await store.hit('a', 1, 1_000, 0)).allowed).toBe(true);
    expect((await store.hit('a', 1, 1_000, 1)).allowed).toBe(false);
    expect((await store.hit('b', 1, 1_000, 2)).allowed).toBe(true);
  });

  it('does not count refused calls, and starts afresh when the window length changes', async () => {
    const store = new InMemoryRateLimitStore();
    await store.hit('k', 1, 10_000, 0);
    for (let i = 0; i < 5; i++) expect((await store.hit('k', 1, 10_000, 1)).allowed).toBe(false);
    expect((await store.hit('k', 2, 10_000, 2)).allowed).toBe(true);
    expect((await store.hit('k', 1, 5_000, 3)).allowed).toBe(true);
  });
});
