export { ClusterEventBus, InProcessEventBus, clusterEvent } from './cluster-event-bus';
export { OutageLog } from './outage-log';
export { RedisConnection } from './redis-connection.service';
export { RedisModule } from './redis.module';
export { RedisScript } from './redis-script';
export { RedisEventBus } from './redis-event-bus';
