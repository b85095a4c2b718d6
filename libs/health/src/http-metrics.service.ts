import { Injectable } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import type { FastifyInstance } from 'fastify';
import type { Histogram } from 'prom-client';
import { HttpDurationSeries } from './http-duration-series';
import { makeTracedHistogramProvider } from './traced-histogram';

export const HTTP_DURATION_METRIC = 'http_request_duration_seconds';

export const httpDurationProvider = makeTracedHistogramProvider({
  name: HTTP_DURATION_METRIC,
  help: 'HTTP request duration in seconds, by method, route template and status',
  labelNames: ['method', 'route', 'status_code'],
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
});

/**
 * Times every request in a Fastify hook rather than a Nest interceptor (an rxjs pipe on every
 * route costs real throughput). Routes are labelled by template; misses share one label so
 * scanners cannot blow up the series count.
 */
@Injectable()
export class HttpMetricsService {
  constructor(@InjectMetric(HTTP_DURATION_METRIC) private readonly duration: Histogram<string>) {}

  attach(fastify: FastifyInstance): void {
    const duration = new HttpDurationSeries(this.duration);
    fastify.addHook('onResponse', (request, reply, done) => {
      // While tracing runs, each bucket keeps the trace of its latest request (OpenMetrics scrapes show it).
      duration.observe(
        request.method,
        request.routeOptions.url ?? 'unmatched',
        reply.statusCode,
        reply.elapsedTime / 1000,
        request.otel?.span,
      );
      done();
    });
  }
}
