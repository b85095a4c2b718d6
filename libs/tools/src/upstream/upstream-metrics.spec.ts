import { register } from 'prom-client';
import type { UpstreamState } from './upstream-tool.provider';
import type { UpstreamRegistry } from './upstream.registry';
import { UPSTREAM_CONNECTED_METRIC, UpstreamMetrics } from './upstream-metrics';

describe('UpstreamMetrics', () => {
  const states = new Map<string, UpstreamState>();

  beforeEach(() => {
    register.clear();
    states.clear();
    const registry = {
      all: () => [...states.entries()].map(([name, state]) => ({ status: () => ({ name, state }) })),
    } as unknown as UpstreamRegistry;
    new UpstreamMetrics(registry).onModuleInit();
  });

  async function scrape(): Promise<Record<string, number>> {
    const metric = (await register.getMetricsAsJSON()).find((m) => m.name === UPSTREAM_CONNECTED_METRIC);
    const values = (metric as { values: Array<{ labels: { upstream: string }; value: number }> } | undefined)?.values ?? [];
    return Object.fromEntries(values.map((v) => [v.labels.upstream, v.value]));
  }

  it('reports 1 for a connected upstream and 0 for one connecting, down or stopped, as of each scrape', async () => {
    states.set('github', 'connected');
    states.set('jira', 'connecting');
    states.set('files', 'down');
    states.set('old', 'stopped');
    expect(await scrape()).toEqual({ github: 1, jira: 0, files: 0, old: 0 });
    states.set('github', 'down');
    states.set('jira', 'connected');
    expect(await scrape()).toEqual({ github: 0, jira: 1, files: 0, old: 0 });
  });

  it('declares the metric even without upstreams, with no series', async () => {
    expect(await scrape()).toEqual({});
    expect((await register.metrics()).split('\n')).toContain('# TYPE upstream_connected gauge');
  });
});
