import { Injectable } from '@nestjs/common';
import { ClusterEventBus, RedisConnection } from '@app/redis';
import type { ComponentHealth } from './health.service';

/** What each replica does on its own while Redis is away. */
export const REDIS_DEGRADED_MODE = [
  'rate limits are counted per replica',
  'WebSocket tickets are redeemable only on the replica that issued them',
  'sessions and users are read from the database on every request (changes made on other replicas still apply at once)',
  'catalogue changes made on other replicas arrive with the periodic refresh (within 10 s)',
  'connections on this replica of a session ended elsewhere close at their next request',
];

/** The `redis` component of /health/detailed. Never "unhealthy": the service keeps serving without Redis. */
@Injectable()
export class RedisHealthIndicator {
  constructor(
    private readonly redis: RedisConnection,
    private readonly bus: ClusterEventBus,
  ) {}

  async check(): Promise<ComponentHealth> {
    const state = this.redis.state();
    if (state === 'disabled') return { status: 'healthy', state, mode: 'single replica: shared state is in-process (REDIS_URL unset)' };
    let error = 'redis did not answer';
    if (state === 'up') {
      const started = performance.now();
      try {
        await this.redis.commands.ping();
        const latencyMs = Math.round((performance.now() - started) * 100) / 100;
        // Until the subscription is back this replica may miss others' changes: degraded too.
        if (this.bus.connected) return { status: 'healthy', state, latencyMs };
        error = 'not subscribed to cluster events yet';
      } catch {
        // Connected but not answering: down.
      }
    }
    return { status: 'degraded', state: 'down', error, degraded: REDIS_DEGRADED_MODE };
  }
}
