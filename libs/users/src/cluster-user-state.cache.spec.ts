import { loadConfig } from '@app/core';
import { InProcessEventBus, RedisConnection } from '@app/redis';
import { RedisEventBus } from '@app/redis';
import { ClusterUserStateCache } from './cluster-user-state.cache';
import type { UserAccessState } from './user-state.cache';

const state: UserAccessState = { id: 'usr_1', email: 'a@example.com', status: 'active', roles: ['admin'], permissions: [] };

describe('ClusterUserStateCache', () => {
  it('on one replica: serves what was set until invalidated, and drops loads that started before', async () => {
    const cache = new ClusterUserStateCache(new InProcessEventBus());
    const before = cache.generation('usr_1');
    cache.set('usr_1', state, before);
    expect(cache.get('usr_1')?.roles).toEqual(['admin']);
    await cache.invalidate('usr_1');
    expect(cache.get('usr_1')).toBeUndefined();
    cache.set('usr_1', state, before);
    expect(cache.get('usr_1')).toBeUndefined();
  });

  it('serves nothing from memory while it cannot hear the other replicas', async () => {
    const redis = new RedisConnection(loadConfig({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_KEY_PREFIX: 'smcp-unit-down:' }));
    try {
      const cache = new ClusterUserStateCache(new RedisEventBus(redis));
      cache.set('usr_1', state, cache.generation('usr_1'));
      expect(cache.get('usr_1')).toBeUndefined();
    } finally {
      await redis.onApplicationShutdown();
    }
  });
});
