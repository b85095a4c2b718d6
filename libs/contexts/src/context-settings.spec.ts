import { settingsProblems } from './context-settings';

const fields = (settings: Record<string, unknown>) => settingsProblems(settings, 60_000).map((problem) => problem.field);

describe('settingsProblems', () => {
  it('accepts the understood settings within bounds and ignores other keys', () => {
    expect(fields({})).toEqual([]);
    expect(fields({ defaultTimeoutMs: 1, rateLimit: { requests: 1, window: '30s' }, anything: { x: 1 } })).toEqual([]);
    expect(fields({ defaultTimeoutMs: 60_000, rateLimit: { requests: 1_000_000, window: '7d' } })).toEqual([]);
  });

  it('bounds defaultTimeoutMs by the server maximum', () => {
    for (const value of [0, -5, 1.5, 60_001, '1000', null]) {
      expect(fields({ defaultTimeoutMs: value })).toEqual(['settings.defaultTimeoutMs']);
    }
  });

  it('wants rateLimit as exactly { requests, window }', () => {
    expect(fields({ rateLimit: null })).toEqual(['settings.rateLimit']);
    expect(fields({ rateLimit: [] })).toEqual(['settings.rateLimit']);
    expect(fields({ rateLimit: { requests: 0, window: '1m' } })).toEqual(['settings.rateLimit.requests']);
    expect(fields({ rateLimit: { requests: 2.5, window: '1m' } })).toEqual(['settings.rateLimit.requests']);
    expect(fields({ rateLimit: { requests: 5, window: '8d' } })).toEqual(['settings.rateLimit.window']);
    expect(fields({ rateLimit: { requests: 5, window: 60 } })).toEqual(['settings.rateLimit.window']);
    expect(fields({ rateLimit: { requests: 5, window: '1m', per: 'user' } })).toEqual(['settings.rateLimit.per']);
  });

  it('does not mistake inherited names for settings', () => {
    expect(fields(JSON.parse('{"constructor": 1, "toString": "x"}'))).toEqual([]);
  });
});
