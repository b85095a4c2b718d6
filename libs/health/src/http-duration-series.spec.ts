import { Histogram, Registry } from 'prom-client';
import { HttpDurationSeries } from './http-duration-series';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function histogram(registry: Registry): Histogram<string> {
  return new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds, by method, route template and status',
    labelNames: ['method', 'route', 'status_code'],
    buckets: BUCKETS,
    registers: [registry],
  });
}

/** Requests as [method, route, status, seconds]: repeats, every bucket, on a bound, past the last, odd routes. */
const REQUESTS: Array<[string, string, number, number]> = [
  ['GET', '/api/v1/tools', 200, 0.0004],
  ['GET', '/api/v1/tools', 200, 0.0004],
  ['GET', '/api/v1/tools', 200, 0.001],
  ...BUCKETS.map((bound, i): [string, string, number, number] => ['GET', '/api/v1/tools', 200, bound * 0.9 + i * 1e-7]),
  ['GET', '/api/v1/tools', 200, 12],
  ['GET', '/api/v1/tools', 401, 0.0002],
  ['POST', '/api/v1/tools/:id/execute', 201, 0.03],
  ['POST', '/api/v1/tools/:id/execute', 201, 0.003],
  ['GET', 'unmatched', 404, 0.0001],
  ['GET', '/api/v1/a"b\\c', 200, 0.002],
  ['GET', '/api/v1/tools', 200, 0.0007],
];

async function exposition(observe: (h: Histogram<string>, request: [string, string, number, number]) => void, reset = false) {
  const registry = new Registry();
  const h = histogram(registry);
  for (const [i, request] of REQUESTS.entries()) {
    observe(h, request);
    if (reset && i === 4) h.reset();
  }
  return registry.metrics();
}

describe('HttpDurationSeries', () => {
  it('records what Histogram.observe records for the same requests', async () => {
    const plain = await exposition((h, [method, route, status, seconds]) =>
      h.observe({ method, route, status_code: String(status) }, seconds),
    );
    let series: HttpDurationSeries | undefined;
    const cached = await exposition((h, [method, route, status, seconds]) =>
      (series ??= new HttpDurationSeries(h)).observe(method, route, status, seconds),
    );
    expect(cached).toBe(plain);
    expect(plain).toContain('http_request_duration_seconds_count{method="GET",route="/api/v1/tools",status_code="200"} 18');
  });

  it('starts the series again after a reset, as Histogram.observe does', async () => {
    const plain = await exposition(
      (h, [method, route, status, seconds]) => h.observe({ method, route, status_code: String(status) }, seconds),
      true,
    );
    let series: HttpDurationSeries | undefined;
    const cached = await exposition(
      (h, [method, route, status, seconds]) => (series ??= new HttpDurationSeries(h)).observe(method, route, status, seconds),
      true,
    );
    expect(cached).toBe(plain);
  });

  it('refuses a value that is not a number, as Histogram.observe does', () => {
    const h = histogram(new Registry());
    const series = new HttpDurationSeries(h);
    series.observe('GET', '/api/v1/tools', 200, 0.001);
    expect(() => series.observe('GET', '/api/v1/tools', 200, Number.NaN)).toThrow(TypeError);
  });
});
