import { randomBytes } from 'node:crypto';
import { loadConfig } from '@app/core';
import { RedisConnection } from '@app/redis';
import { RedisRateLimitStore } from './redis-rate-limit.store';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('RedisRateLimitStore (real Redis)', () => {
  let redis: RedisConnection;
  let store: RedisRateLimitStore;

  beforeAll(async () => {
    redis = new RedisConnection(loadConfig({ REDIS_URL, REDIS_KEY_PREFIX: `smcp-unit-${randomBytes(6).toString('hex')}:` }));
    await redis.onModuleInit();
    store = new RedisRateLimitStore(redis);
  });
  afterAll(async () => {
    const keys = await redis.commands.keys(`${redis.keyPrefix}*`);
    if (keys.length > 0) await redis.commands.del(...keys);
    await redis.onApplicationShutdown();
  });

  it('allows `limit` calls per window, then refuses (refusals not counted) with the time left', async () => {
    const decisions = [];
    for (let i = 0; i < 5; i++) decisions.push(await store.hit('k1', 3, 60_000, 0));
    expect(decisions.map((d) => [d.allowed, d.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
      [false, 0],
    ]);
    expect(decisions[3].resetInMs).toBeGreaterThan(50_000);
    expect(decisions[3].resetInMs).toBeLessThanOrEqual(60_000);
    const [count] = await redis.commands.hmget(redis.key('ratelimit', 'k1'), 'n');
    expect(count).toBe('3');
  });

  it('counts concurrent calls atomically: exactly `limit` of them pass', async () => {
    const decisions = await Promise.all(Array.from({ length: 50 }, () => store.hit('k2', 7, 60_000, 0)));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(7);
    expect(
      decisions
        .filter((d) => d.allowed)
        .map((d) => d.remaining)
        .sort(),
    ).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('starts afresh when the window ends or its length changes', async () => {
    expect((await store.hit('k3', 1, 200, 0)).allowed).toBe(true);
    expect((await store.hit('k3', 1, 200, 0)).allowed).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect((await store.hit('k3', 1, 200, 0)).allowed).toBe(true);
    expect((await store.hit('k3', 1, 10_000, 0)).allowed).toBe(true);
    expect((await store.hit('k3', 1, 10_000, 0)).allowed).toBe(false);
  });

  it('falls back to counting in this process when Redis fails', async () => {
    const down = new RedisConnection(loadConfig({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_KEY_PREFIX: 'smcp-unit-down:' }));
    const fallback = new RedisRateLimitStore(down);
    try {
      expect((await fallback.hit('k', 1, 60_000, 1_000)).allowed).toBe(true);
      expect((await fallback.hit('k', 1, 60_000, 1_001)).allowed).toBe(false);
    } finally {
      await down.onApplicationShutdown();
    }
  });
});
