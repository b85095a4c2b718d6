import { randomBytes } from 'node:crypto';
import { loadConfig } from '@app/core';
import { clusterEvent, ClusterEventOrigin, InProcessEventBus } from './cluster-event-bus';
import { RedisConnection } from './redis-connection.service';
import { RedisEventBus } from './redis-event-bus';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PING = clusterEvent<{ n: number }>('test.ping');

const until = async (check: () => boolean, timeoutMs = 5_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
};

describe('cluster event bus', () => {
  it('in-process: delivers to this process once, synchronously', async () => {
    const bus = new InProcessEventBus();
    const seen: Array<[number, ClusterEventOrigin]> = [];
    bus.subscribe(PING, ({ n }, origin) => seen.push([n, origin]));
    const published = bus.publish(PING, { n: 1 });
    expect(seen).toEqual([[1, 'local']]);
    expect(await published).toBe(true);
    expect(bus.connected).toBe(true);
  });

  describe('Redis (two replicas on one prefix, real Redis)', () => {
    const prefix = `smcp-unit-${randomBytes(6).toString('hex')}:`;
    const connections: RedisConnection[] = [];
    let a: RedisEventBus;
    let b: RedisEventBus;

    beforeAll(async () => {
      for (let i = 0; i < 2; i++) connections.push(new RedisConnection(loadConfig({ REDIS_URL, REDIS_KEY_PREFIX: prefix })));
      a = new RedisEventBus(connections[0]);
      b = new RedisEventBus(connections[1]);
      await Promise.all(connections.map((connection) => connection.onModuleInit()));
      await until(() => a.connected && b.connected);
    });
    afterAll(() => Promise.all(connections.map((connection) => connection.onApplicationShutdown())));

    it('delivers locally at once and exactly once, and to the other replica as remote', async () => {
      expect(a.connected && b.connected).toBe(true);
      const onA: Array<[number, ClusterEventOrigin]> = [];
      const onB: Array<[number, ClusterEventOrigin]> = [];
      a.subscribe(PING, ({ n }, origin) => onA.push([n, origin]));
      b.subscribe(PING, ({ n }, origin) => onB.push([n, origin]));
      const published = a.publish(PING, { n: 7 });
      expect(onA).toEqual([[7, 'local']]);
      expect(await published).toBe(true);
      await until(() => onB.length > 0);
      // Time for A's own copy to come back from Redis, which it must skip.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(onA).toEqual([[7, 'local']]);
      expect(onB).toEqual([[7, 'remote']]);
    });

    it('keeps deployments with different prefixes apart', async () => {
      const other = new RedisConnection(loadConfig({ REDIS_URL, REDIS_KEY_PREFIX: `${prefix}other:` }));
      const bus = new RedisEventBus(other);
      await other.onModuleInit();
      try {
        await until(() => bus.connected);
        const heard: number[] = [];
        b.subscribe(PING, ({ n }) => heard.push(n));
        await bus.publish(PING, { n: 99 });
        await new Promise((resolve) => setTimeout(resolve, 200));
        expect(heard).toEqual([]);
      } finally {
        await other.onApplicationShutdown();
      }
    });

    it('with Redis unreachable still delivers locally, reports false, and is not connected', async () => {
      const down = new RedisConnection(loadConfig({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_KEY_PREFIX: prefix }));
      const bus = new RedisEventBus(down);
      try {
        const seen: number[] = [];
        bus.subscribe(PING, ({ n }) => seen.push(n));
        expect(await bus.publish(PING, { n: 3 })).toBe(false);
        expect(seen).toEqual([3]);
        expect(bus.connected).toBe(false);
        expect(down.state()).toBe('down');
      } finally {
        await down.onApplicationShutdown();
      }
    });
  });
});
