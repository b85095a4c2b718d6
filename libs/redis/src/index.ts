export * from './cluster-event-bus';
export * from './outage-log';
export * from './redis-breaker';
export * from './redis-connection.service';
export * from './redis.module';
export * from './redis-script';
export * from './redis-event-bus';
