import { randomBytes } from 'node:crypto';
import { loadConfig } from '@app/core';
import { RedisUnavailableError } from './redis-breaker';
import { RedisConnection } from './redis-connection.service';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('RedisConnection (real Redis)', () => {
  it('closes its breaker at boot once both connections answer a PING, and then runs commands', async () => {
    const redis = new RedisConnection(loadConfig({ REDIS_URL, REDIS_KEY_PREFIX: `smcp-unit-${randomBytes(6).toString('hex')}:` }));
    try {
      await redis.onModuleInit();
      expect(redis.state()).toBe('up');
      expect(redis.hearsEverything).toBe(true);
      expect(redis.lastLatencyMs).toEqual(expect.any(Number));
      expect(await redis.run((client) => client.ping())).toBe('PONG');
    } finally {
      await redis.onApplicationShutdown();
    }
  });

  it('unreachable: skips Redis at once (no command is sent), hears nothing, and a publisher need not wait', async () => {
    const redis = new RedisConnection(loadConfig({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_KEY_PREFIX: 'smcp-unit-down:' }));
    try {
      await redis.onModuleInit();
      expect(redis.state()).toBe('down');
      expect(redis.hearsEverything).toBe(false);
      let sent = false;
      await expect(redis.run(async () => (sent = true))).rejects.toBeInstanceOf(RedisUnavailableError);
      expect(sent).toBe(false);
      // Never trusted since boot: no replica can be relying on announcements from this one.
      await redis.untilPeersDistrust();
    } finally {
      await redis.onApplicationShutdown();
    }
  });
});
