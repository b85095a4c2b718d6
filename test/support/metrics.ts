import { http } from './test-app';

/**
 * The samples of one metric on a server's GET /api/v1/metrics, keyed by their labels as written
 * (`dependency="redis"`; '' for an unlabelled sample): what a Prometheus scrape of it would read.
 */
export async function scrapeMetric(baseUrl: string, name: string): Promise<Record<string, number>> {
  const res = await http(baseUrl, 'GET', '/api/v1/metrics');
  if (res.status !== 200) throw new Error(`GET /api/v1/metrics answered ${res.status}`);
  const samples: Record<string, number> = {};
  for (const line of res.text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match && match[1] === name) samples[match[2] ?? ''] = Number(match[3]);
  }
  return samples;
}
