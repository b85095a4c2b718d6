export * from './health.module';
export * from './health.service';
export * from './readiness.service';
export * from './http-metrics.service';
