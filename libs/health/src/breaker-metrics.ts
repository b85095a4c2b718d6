import { Injectable, OnModuleInit } from '@nestjs/common';
import { DatabaseProbe } from '@app/database';
import { RedisConnection } from '@app/redis';
import { stateGauge } from './state-gauge';

export const CIRCUIT_BREAKER_METRIC = 'circuit_breaker_open';

/**
 * `circuit_breaker_open{dependency}`: 1 while the breaker in front of PostgreSQL or Redis is open
 * (calls to it fail at once: 503 for the database, the degraded mode for Redis), 0 while closed.
 * Redis has no series when REDIS_URL is unset (there is no breaker then). Read at scrape time.
 */
@Injectable()
export class BreakerMetrics implements OnModuleInit {
  constructor(
    private readonly database: DatabaseProbe,
    private readonly redis: RedisConnection,
  ) {}

  onModuleInit(): void {
    stateGauge<'dependency'>({
      name: CIRCUIT_BREAKER_METRIC,
      help: 'Whether the circuit breaker in front of a dependency is open (1: its calls fail at once) or closed (0), by dependency',
      labelNames: ['dependency'],
      read: (gauge) => {
        gauge.set({ dependency: 'postgresql' }, this.database.breakerOpen ? 1 : 0);
        const redis = this.redis.state();
        if (redis === 'disabled') gauge.remove({ dependency: 'redis' });
        else gauge.set({ dependency: 'redis' }, redis === 'down' ? 1 : 0);
      },
    });
  }
}
