import { randomBytes } from 'node:crypto';
import { loadConfig } from '@app/core';
import { RedisConnection } from '@app/redis';
import { RedisThrottlerStorage } from './redis-throttler.storage';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('RedisThrottlerStorage (real Redis)', () => {
  let redis: RedisConnection;
  let storage: RedisThrottlerStorage;

  beforeAll(async () => {
    redis = new RedisConnection(loadConfig({ REDIS_URL, REDIS_KEY_PREFIX: `smcp-unit-${randomBytes(6).toString('hex')}:` }));
    await redis.onModuleInit();
    storage = new RedisThrottlerStorage(redis);
  });
  afterAll(async () => {
    const keys = await redis.commands.keys(`${redis.keyPrefix}*`);
    if (keys.length > 0) await redis.commands.del(...keys);
    await redis.onApplicationShutdown();
  });

  it('counts to the limit, blocks the call over it for the block duration, then counts afresh', async () => {
    const records = [];
    for (let i = 0; i < 4; i++) records.push(await storage.increment('a', 60_000, 3, 300, 'default'));
    expect(records.map((r) => [r.totalHits, r.isBlocked])).toEqual([
      [1, false],
      [2, false],
      [3, false],
      [4, true],
    ]);
    expect(records[0].timeToExpire).toBe(60);
    expect(records[3].timeToBlockExpire).toBe(1);
    // Blocked: not counted.
    expect(await storage.increment('a', 60_000, 3, 300, 'default')).toMatchObject({ isBlocked: true, totalHits: 4 });
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect(await storage.increment('a', 60_000, 3, 300, 'default')).toMatchObject({ isBlocked: false, totalHits: 1 });
  });

  it('is atomic under concurrency: exactly `limit` of many simultaneous calls pass', async () => {
    const records = await Promise.all(Array.from({ length: 40 }, () => storage.increment('b', 60_000, 10, 60_000, 'default')));
    expect(records.filter((r) => !r.isBlocked)).toHaveLength(10);
  });

  it('without a block duration refuses calls over the limit without counting them', async () => {
    await storage.increment('c', 60_000, 1, 0, 'default');
    const over = await storage.increment('c', 60_000, 1, 0, 'default');
    expect(over).toMatchObject({ isBlocked: true, totalHits: 2 });
    expect(await redis.commands.get(redis.key('throttle', 'default', 'c', 'hits'))).toBe('1');
  });

  it('falls back to the in-process storage when Redis fails', async () => {
    const down = new RedisConnection(loadConfig({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_KEY_PREFIX: 'smcp-unit-down:' }));
    const fallback = new RedisThrottlerStorage(down);
    try {
      expect(await fallback.increment('k', 60_000, 1, 60_000, 'default')).toMatchObject({ isBlocked: false, totalHits: 1 });
      expect(await fallback.increment('k', 60_000, 1, 60_000, 'default')).toMatchObject({ isBlocked: true });
    } finally {
      fallback.fallback.onApplicationShutdown();
      await down.onApplicationShutdown();
    }
  });
});
