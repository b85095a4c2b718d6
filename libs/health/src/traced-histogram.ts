import type { Provider } from '@nestjs/common';
import { getToken } from '@willsoto/nestjs-prometheus';
import { Histogram, HistogramConfiguration, LabelValues, register, Registry, RegistryContentType } from 'prom-client';
import { exemplarOf, Span, tracing } from '@app/telemetry';

/** The default registry, whose format scrapes switch (its declared type only admits the default one). */
export const defaultRegistry = register as unknown as Registry<RegistryContentType>;

/**
 * A histogram provider (injected with @InjectMetric(name), as makeHistogramProvider's) whose
 * buckets keep exemplars linking to traces while tracing runs. prom-client accepts exemplars only
 * in an OpenMetrics-typed registry, so the default registry becomes one then (scrapes still
 * render whichever format they ask for, see metrics.controller.ts). With tracing off it is a
 * plain histogram, observed exactly as before.
 */
export function makeTracedHistogramProvider(options: HistogramConfiguration<string>): Provider {
  return {
    provide: getToken(options.name),
    useFactory: () => {
      const existing = register.getSingleMetric(options.name);
      if (existing) return existing;
      const exemplars = tracing.tracer !== null;
      if (exemplars) defaultRegistry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      return new Histogram({ ...options, enableExemplars: exemplars });
    },
  };
}

/**
 * Observes a histogram of makeTracedHistogramProvider: with tracing on, with the span's (default:
 * the active span's) trace and span ids as the bucket's exemplar when it is sampled.
 */
export function observeTraced(histogram: Histogram<string>, labels: LabelValues<string>, value: number, span?: Span): void {
  if (!tracing.tracer) return histogram.observe(labels, value);
  histogram.observe({ labels, value, exemplarLabels: exemplarOf(span) });
}
