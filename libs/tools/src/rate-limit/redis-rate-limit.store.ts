import { Injectable, Logger } from '@nestjs/common';
import { OutageLog, RedisConnection, RedisScript } from '@app/redis';
import { InMemoryRateLimitStore } from './in-memory-rate-limit.store';
import { RateLimitDecision, RateLimitStore } from './rate-limit-store';

/**
 * One fixed window per key, as the in-memory store keeps it: a hash {n: calls, w: window length}
 * living for the window. A changed window length starts a fresh window; refused calls are not
 * counted. Returns {allowed, remaining, ms until the window ends}.
 */
export const RATE_LIMIT_SCRIPT = new RedisScript(`
local limit = tonumber(ARGV[1])
local windowMs = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'n', 'w')
local ttl = redis.call('PTTL', KEYS[1])
local count = tonumber(state[1])
if count == nil or ttl <= 0 or tonumber(state[2]) ~= windowMs then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'n', 0, 'w', windowMs)
  redis.call('PEXPIRE', KEYS[1], windowMs)
  count = 0
  ttl = windowMs
end
if count >= limit then
  return {0, 0, ttl}
end
count = redis.call('HINCRBY', KEYS[1], 'n', 1)
return {1, limit - count, ttl}
`);

/**
 * Per-tool budgets shared by every replica. Windows run on Redis's clock (its key expiry), so
 * replicas with skewed clocks agree; `nowMs` only matters to the fallback. When Redis fails, or at
 * once while its breaker is open, the call is counted in this process instead (budgets then hold
 * per replica), logged once per outage.
 */
@Injectable()
export class RedisRateLimitStore extends RateLimitStore {
  private readonly logger = new Logger(RedisRateLimitStore.name);
  private readonly fallback = new InMemoryRateLimitStore();
  private readonly outage = new OutageLog(
    this.logger,
    'Redis unavailable: per-tool rate limits are counted per replica until it is back',
    'Redis answers again: per-tool rate limits are shared across replicas again',
  );

  constructor(private readonly redis: RedisConnection) {
    super();
  }

  async hit(key: string, limit: number, windowMs: number, nowMs: number): Promise<RateLimitDecision> {
    let reply: unknown;
    try {
      reply = await this.redis.run((client) => RATE_LIMIT_SCRIPT.run(client, [this.redis.key('ratelimit', key)], [limit, windowMs]));
      this.outage.recovered();
    } catch (error) {
      this.outage.failed(error);
      return this.fallback.hit(key, limit, windowMs, nowMs);
    }
    const [allowed, remaining, resetInMs] = reply as [number, number, number];
    return { allowed: allowed === 1, limit, remaining: Number(remaining), resetInMs: Math.max(0, Number(resetInMs)) };
  }
}
