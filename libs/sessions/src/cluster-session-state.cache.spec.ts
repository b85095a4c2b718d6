import { loadConfig } from '@app/core';
import { InProcessEventBus, RedisConnection } from '@app/redis';
import { RedisEventBus } from '@app/redis';
import { ClusterSessionStateCache } from './cluster-session-state.cache';

const entry = (checkedAtMs = Date.now()) => ({ userId: 'usr_1', lastActivityMs: checkedAtMs, checkedAtMs });

describe('ClusterSessionStateCache', () => {
  it('on one replica: remembers active sessions, and a denial wins at once and for good', async () => {
    const cache = new ClusterSessionStateCache(new InProcessEventBus());
    cache.set('ses_1', entry());
    expect(cache.get('ses_1')?.userId).toBe('usr_1');
    const denied = cache.deny('ses_1', 'ses_2');
    // Denied before the announcement settles (callers await it before their commit).
    expect(cache.isDenied('ses_1')).toBe(true);
    expect(cache.isDenied('ses_2')).toBe(true);
    await denied;
    expect(cache.get('ses_1')).toBeUndefined();
    cache.set('ses_1', entry());
    expect(cache.get('ses_1')).toBeUndefined();
  });

  it('while it cannot hear the other replicas (Redis unreachable) it remembers nothing, but still denies', async () => {
    const redis = new RedisConnection(loadConfig({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_KEY_PREFIX: 'smcp-unit-down:' }));
    try {
      const cache = new ClusterSessionStateCache(new RedisEventBus(redis));
      cache.set('ses_1', entry());
      expect(cache.get('ses_1')).toBeUndefined();
      await cache.deny('ses_1');
      expect(cache.isDenied('ses_1')).toBe(true);
    } finally {
      await redis.onApplicationShutdown();
    }
  });
});
