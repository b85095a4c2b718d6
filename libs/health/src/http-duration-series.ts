import type { Histogram } from 'prom-client';
import { Span, tracing } from '@app/telemetry';
import { observeTraced } from './traced-histogram';

/** The parts of prom-client's Histogram (15.x) that an observation updates. */
interface HistogramInternals {
  hashMap: Record<string, { sum: number; count: number; bucketValues: Record<string, number> } | undefined>;
  upperBounds: readonly number[];
  sortedLabelNames: readonly string[];
}

/** One method/route/status combination: its labels object and prom-client's key for it. */
interface Series {
  labels: Record<string, string>;
  hash: string;
}

/**
 * The HTTP duration histogram's observations, by method, route template and status, without
 * prom-client hashing and validating a fresh labels object on every request: each combination's
 * labels and prom-client's key for them (`label:value,` in sorted label order, as its
 * hashObject builds it) are worked out once, and an observation adds to that series' sum, count
 * and bucket as Histogram.observe does. A series prom-client does not hold (the first
 * observation, or after a reset or remove), a value that is not finite, and every observation
 * while tracing runs (exemplars) go through prom-client itself. http-duration-series.spec checks
 * the exposition against plain observe calls.
 */
export class HttpDurationSeries {
  private readonly internals: HistogramInternals;
  private readonly boundKeys: string[];
  /** route -> method -> status -> series. */
  private readonly series = new Map<string, Map<string, Map<number, Series>>>();

  constructor(private readonly histogram: Histogram<string>) {
    this.internals = histogram as unknown as HistogramInternals;
    // The bucket objects' keys, as prom-client made them (an object key is the bound's string).
    this.boundKeys = this.internals.upperBounds.map(String);
  }

  observe(method: string, route: string, statusCode: number, seconds: number, span?: Span): void {
    const series = this.seriesOf(method, route, statusCode);
    if (tracing.tracer) return observeTraced(this.histogram, series.labels, seconds, span);
    const entry = this.internals.hashMap[series.hash];
    if (!entry || !Number.isFinite(seconds)) return this.histogram.observe(series.labels, seconds);
    entry.sum += seconds;
    entry.count += 1;
    const bounds = this.internals.upperBounds;
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= bounds[i]) {
        entry.bucketValues[this.boundKeys[i]] += 1;
        return;
      }
    }
  }

  private seriesOf(method: string, route: string, statusCode: number): Series {
    let methods = this.series.get(route);
    if (!methods) {
      methods = new Map();
      this.series.set(route, methods);
    }
    let statuses = methods.get(method);
    if (!statuses) {
      statuses = new Map();
      methods.set(method, statuses);
    }
    let series = statuses.get(statusCode);
    if (!series) {
      const labels: Record<string, string> = { method, route, status_code: String(statusCode) };
      let hash = '';
      for (const name of this.internals.sortedLabelNames) hash += `${name}:${labels[name]},`;
      series = { labels, hash };
      statuses.set(statusCode, series);
    }
    return series;
  }
}
