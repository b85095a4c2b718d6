import { wantsOpenMetrics } from './metrics.controller';

describe('wantsOpenMetrics (content negotiation of /metrics)', () => {
  it.each([
    [undefined, false],
    ['', false],
    ['*/*', false],
    ['text/plain;version=0.0.4', false],
    // What Prometheus sends when it may use OpenMetrics (scrape_protocols default order).
    [
      'application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2',
      true,
    ],
    ['Application/OpenMetrics-Text', true],
    ['application/openmetrics-text;q=0', false],
    ['text/plain, application/openmetrics-text; q=0.1', true],
  ])('%j: %s', (accept, expected) => {
    expect(wantsOpenMetrics(accept)).toBe(expected);
  });
});
