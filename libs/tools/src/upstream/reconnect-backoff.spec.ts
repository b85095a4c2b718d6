import { ReconnectBackoff } from './reconnect-backoff';

describe('ReconnectBackoff', () => {
  it('doubles up to the cap, each delay within the upper half of its step', () => {
    const low = new ReconnectBackoff(100, 1000, () => 0);
    const high = new ReconnectBackoff(100, 1000, () => 1);
    expect(Array.from({ length: 6 }, () => low.next())).toEqual([50, 100, 200, 400, 500, 500]);
    expect(Array.from({ length: 6 }, () => high.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('jitters, and starts over after reset', () => {
    const backoff = new ReconnectBackoff(1000, 60_000);
    const delays = Array.from({ length: 50 }, () => {
      backoff.reset();
      return backoff.next();
    });
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(500);
    expect(Math.max(...delays)).toBeLessThanOrEqual(1000);
    expect(new Set(delays).size).toBeGreaterThan(1);
    expect(backoff.attempts).toBe(1);
  });

  it('never overflows on long outages', () => {
    const backoff = new ReconnectBackoff(500, 30_000, () => 1);
    for (let i = 0; i < 2000; i++) backoff.next();
    expect(backoff.next()).toBe(30_000);
  });
});
