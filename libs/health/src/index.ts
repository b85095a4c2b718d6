export { HealthModule } from './health.module';
export { HealthService } from './health.service';
export type { ComponentHealth } from './health.service';
export { ReadinessService } from './readiness.service';
export { HttpMetricsService } from './http-metrics.service';
export { stateGauge } from './state-gauge';
export { makeTracedHistogramProvider, observeTraced } from './traced-histogram';
