import { register } from 'prom-client';
import type { DatabaseProbe } from '@app/database';
import type { RedisConnection } from '@app/redis';
import { BreakerMetrics, CIRCUIT_BREAKER_METRIC } from './breaker-metrics';

type RedisState = ReturnType<RedisConnection['state']>;

describe('BreakerMetrics', () => {
  let databaseOpen: boolean;
  let redisState: RedisState;

  beforeEach(() => {
    register.clear();
    databaseOpen = false;
    redisState = 'up';
    const database = {
      get breakerOpen() {
        return databaseOpen;
      },
    } as DatabaseProbe;
    const redis = { state: () => redisState } as RedisConnection;
    new BreakerMetrics(database, redis).onModuleInit();
  });

  /** What a scrape reads: the series of circuit_breaker_open, by dependency. */
  async function scrape(): Promise<Record<string, number>> {
    const metric = (await register.getMetricsAsJSON()).find((m) => m.name === CIRCUIT_BREAKER_METRIC);
    const values = (metric as { values: Array<{ labels: { dependency: string }; value: number }> } | undefined)?.values ?? [];
    return Object.fromEntries(values.map((v) => [v.labels.dependency, v.value]));
  }

  it('reads both breakers at each scrape: 1 while open, 0 while closed', async () => {
    expect(await scrape()).toEqual({ postgresql: 0, redis: 0 });
    databaseOpen = true;
    redisState = 'down';
    expect(await scrape()).toEqual({ postgresql: 1, redis: 1 });
    databaseOpen = false;
    expect(await scrape()).toEqual({ postgresql: 0, redis: 1 });
  });

  it('has no Redis series when Redis is not configured', async () => {
    redisState = 'disabled';
    expect(await scrape()).toEqual({ postgresql: 0 });
  });

  it('is served in the text exposition under its documented name', async () => {
    redisState = 'down';
    const text = await register.metrics();
    expect(text.split('\n').filter((line) => line.startsWith(CIRCUIT_BREAKER_METRIC))).toEqual([
      'circuit_breaker_open{dependency="postgresql"} 0',
      'circuit_breaker_open{dependency="redis"} 1',
    ]);
  });
});
