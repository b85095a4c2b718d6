import { Injectable } from '@nestjs/common';
import { ClusterEventBus, RedisConnection } from '@app/redis';
import type { ComponentHealth } from './health.service';

/** What each replica does on its own while Redis is away. */
export const REDIS_DEGRADED_MODE = [
  'rate limits are counted per replica',
  'WebSocket tickets are refused (503); connect with an Authorization header',
  'sessions and users are read from the database on every request (changes made on other replicas still apply at once)',
  'catalogue changes made on other replicas arrive with the periodic refresh (within 10 s)',
  'connections on this replica of a session ended elsewhere close at their next request',
];

/**
 * The `redis` component of /health/detailed, read from the connection's breaker (kept current by
 * its heartbeat), so this check never waits on a silent Redis. Never "unhealthy": the service
 * keeps serving without Redis.
 */
@Injectable()
export class RedisHealthIndicator {
  constructor(
    private readonly redis: RedisConnection,
    private readonly bus: ClusterEventBus,
  ) {}

  async check(): Promise<ComponentHealth> {
    const state = this.redis.state();
    if (state === 'disabled') return { status: 'healthy', state, mode: 'single replica: shared state is in-process (REDIS_URL unset)' };
    // Until the subscription is back (and proven) this replica may miss others' changes: degraded too.
    if (state === 'up' && this.bus.connected) return { status: 'healthy', state, latencyMs: this.redis.lastLatencyMs };
    const error = state === 'up' ? 'not subscribed to cluster events yet' : 'redis did not answer';
    return { status: 'degraded', state: 'down', error, degraded: REDIS_DEGRADED_MODE };
  }
}
