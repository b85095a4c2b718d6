import { rateWindowMs } from './rate-window';

describe('rateWindowMs', () => {
  it('reads <n><unit> windows', () => {
    expect(rateWindowMs('30s')).toBe(30_000);
    expect(rateWindowMs('1m')).toBe(60_000);
    expect(rateWindowMs('2h')).toBe(7_200_000);
    expect(rateWindowMs('7d')).toBe(7 * 86_400_000);
  });

  it('refuses anything else, and windows above 7 days', () => {
    for (const bad of ['', '0m', '1', 'm', '1 m', '1M', '1.5m', '-1m', '01m', '8d', '1w', '1m ']) expect(rateWindowMs(bad)).toBeNull();
  });
});
