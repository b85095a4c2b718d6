import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { AdminHealthController } from './admin-health.controller';
import { BreakerMetrics } from './breaker-metrics';
import { EventLoopMonitor } from './event-loop.monitor';
import { HealthController } from './health.controller';
import { HealthService } from './health.service';
import { HttpMetricsService, httpDurationProvider } from './http-metrics.service';
import { MetricsController } from './metrics.controller';
import { ReadinessService } from './readiness.service';
import { RedisHealthIndicator } from './redis-health.indicator';

@Module({
  imports: [
    TerminusModule.forRoot({ logger: false }),
    PrometheusModule.register({ controller: MetricsController, path: '/metrics', defaultMetrics: { enabled: true } }),
  ],
  controllers: [HealthController, AdminHealthController],
  providers: [
    HealthService,
    ReadinessService,
    RedisHealthIndicator,
    EventLoopMonitor,
    HttpMetricsService,
    httpDurationProvider,
    BreakerMetrics,
  ],
  exports: [HealthService, ReadinessService, HttpMetricsService, PrometheusModule],
})
export class HealthModule {}
