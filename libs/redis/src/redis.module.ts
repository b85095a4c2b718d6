import { Global, Module } from '@nestjs/common';
import { ClusterEventBus, InProcessEventBus } from './cluster-event-bus';
import { RedisConnection } from './redis-connection.service';
import { RedisEventBus } from './redis-event-bus';

/**
 * Shared state across replicas. With REDIS_URL the event bus is Redis pub/sub; without it,
 * in-process (one replica). Global: the caches, stores and guards of several modules use it.
 */
@Global()
@Module({
  providers: [
    RedisConnection,
    {
      provide: ClusterEventBus,
      inject: [RedisConnection],
      useFactory: (redis: RedisConnection) => (redis.enabled ? new RedisEventBus(redis) : new InProcessEventBus()),
    },
  ],
  exports: [RedisConnection, ClusterEventBus],
})
export class RedisModule {}
