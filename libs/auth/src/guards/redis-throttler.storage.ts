import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { ThrottlerStorage } from '@nestjs/throttler';
import { BackgroundJobs } from '@app/core';
import { OutageLog, RedisConnection, RedisScript } from '@app/redis';
import { InMemoryThrottlerStorage } from './in-memory-throttler.storage';

/**
 * The throttler's counting, atomically on Redis. KEYS: hits, block. ARGV: ttl ms, limit, block ms.
 * Like the in-memory storage: the call that goes over the limit starts a block of `block` ms
 * during which nothing is counted; after it the count starts again. Without a block duration,
 * calls over the limit are refused and not counted. Returns {hits, ms to window end, blocked, ms to block end}.
 */
export const THROTTLER_SCRIPT = new RedisScript(`
local ttl = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local block = tonumber(ARGV[3])
local blockedFor = redis.call('PTTL', KEYS[2])
if blockedFor > 0 then
  local left = redis.call('PTTL', KEYS[1])
  if left < 0 then left = 0 end
  return {limit + 1, left, 1, blockedFor}
end
if block <= 0 then
  local current = tonumber(redis.call('GET', KEYS[1]) or '0')
  if current >= limit then
    local left = redis.call('PTTL', KEYS[1])
    if left < 0 then left = ttl end
    return {current + 1, left, 1, left}
  end
end
local hits = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  left = ttl
end
if hits > limit and block > 0 then
  redis.call('SET', KEYS[2], '1', 'PX', block)
  redis.call('DEL', KEYS[1])
  return {hits, left, 1, block}
end
return {hits, left, 0, 0}
`);

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/**
 * @nestjs/throttler storage shared by every replica (REDIS_URL). Fixed windows on Redis's clock.
 * When Redis fails, or at once while its breaker is open, the in-process storage counts instead
 * (limits then hold per replica), and that is logged once per outage.
 */
@Injectable()
export class RedisThrottlerStorage implements ThrottlerStorage, OnApplicationShutdown {
  private readonly logger = new Logger(RedisThrottlerStorage.name);
  readonly fallback: InMemoryThrottlerStorage;
  private readonly outage = new OutageLog(
    this.logger,
    'Redis unavailable: request rate limits are counted per replica until it is back',
    'Redis answers again: request rate limits are shared across replicas again',
  );

  constructor(
    private readonly redis: RedisConnection,
    jobs: BackgroundJobs = new BackgroundJobs(),
  ) {
    this.fallback = new InMemoryThrottlerStorage(jobs);
  }

  onApplicationShutdown(): void {
    this.fallback.onApplicationShutdown();
  }

  async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<ThrottlerStorageRecord> {
    let reply: unknown;
    try {
      const base = this.redis.key('throttle', throttlerName, key);
      reply = await this.redis.run((client) =>
        THROTTLER_SCRIPT.run(client, [`${base}:hits`, `${base}:block`], [ttl, limit, blockDuration]),
      );
      this.outage.recovered();
    } catch (error) {
      this.outage.failed(error);
      return this.fallback.increment(key, ttl, limit, blockDuration, throttlerName);
    }
    const [hits, windowMs, blocked, blockMs] = (reply as number[]).map(Number);
    return {
      totalHits: hits,
      timeToExpire: Math.ceil(windowMs / 1000),
      isBlocked: blocked === 1,
      timeToBlockExpire: Math.ceil(blockMs / 1000),
    };
  }
}
