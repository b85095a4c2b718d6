import { Controller, Get, Headers, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import { PrometheusController } from '@willsoto/nestjs-prometheus';
import type { FastifyReply } from 'fastify';
import { Registry, RegistryContentType } from 'prom-client';
import { Public } from '@app/core';
import { defaultRegistry as registry } from './traced-histogram';

@ApiTags('Health')
@Public()
@Controller()
export class MetricsController extends PrometheusController {
  @Get()
  @ApiOperation({
    summary: 'Prometheus metrics',
    description:
      'Text exposition format, for a Prometheus scrape. (extension) A scraper that asks for OpenMetrics ' +
      '(`Accept: application/openmetrics-text`) gets it, with exemplars linking the duration histograms ' +
      '(`http_request_duration_seconds`, `tool_execution_duration_seconds`) to trace ids while tracing runs.',
  })
  @ApiProduces('text/plain', 'application/openmetrics-text')
  @ApiOkResponse({ description: 'Prometheus metrics', schema: { type: 'string' } })
  override async index(@Res({ passthrough: true }) response: FastifyReply, @Headers('accept') accept?: string): Promise<string> {
    const type = wantsOpenMetrics(accept) ? Registry.OPENMETRICS_CONTENT_TYPE : Registry.PROMETHEUS_CONTENT_TYPE;
    void response.header('Content-Type', type);
    return scrape(type);
  }
}

/** True when the Accept header lists OpenMetrics text with a non-zero weight (Prometheus sends it first when it can). */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((range) => {
    const [media, ...params] = range.split(';').map((part) => part.trim().toLowerCase());
    if (media !== 'application/openmetrics-text') return false;
    const q = params.find((param) => param.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

let scrapes: Promise<unknown> = Promise.resolve();

/**
 * The registry in the asked format. prom-client renders one format per registry (its content type:
 * OpenMetrics while tracing runs, so histograms may hold exemplars; Prometheus text otherwise) and,
 * rendering OpenMetrics, renames counters (drops `_total`) in place: scrapes run one at a time,
 * and each restores the registry's own format and the names it found.
 */
function scrape(type: RegistryContentType): Promise<string> {
  const run = scrapes.then(async () => {
    const home = registry.contentType;
    if (type === home && type === Registry.PROMETHEUS_CONTENT_TYPE) return registry.metrics();
    const metrics = registry.getMetricsAsArray() as unknown as Array<{ name: string }>;
    const names = metrics.map((metric) => metric.name);
    registry.setContentType(type);
    try {
      return await registry.metrics();
    } finally {
      registry.setContentType(home);
      metrics.forEach((metric, i) => (metric.name = names[i]));
    }
  });
  scrapes = run.catch(() => undefined);
  return run;
}
