import { isDatabaseUnavailable } from '@app/core';
import { PostgresBreaker } from './postgres-breaker';

describe('PostgresBreaker', () => {
  let nowMs = 1_000;
  const breaker = () => new PostgresBreaker(() => nowMs);

  it('starts closed, opens on the first failure and drops every tracked connection once', () => {
    const b = breaker();
    const dropped: string[] = [];
    b.track({ drop: () => dropped.push('a') });
    const untrack = b.track({ drop: () => dropped.push('b') });
    b.track({ drop: () => dropped.push('c') });
    untrack();
    expect(b.isOpen).toBe(false);
    b.failed('no answer to the heartbeat within 2000 ms');
    b.failed('a second failure changes nothing');
    expect({ open: b.isOpen, reason: b.openReason, dropped }).toEqual({
      open: true,
      reason: 'no answer to the heartbeat within 2000 ms',
      dropped: ['a', 'c'],
    });
  });

  it('answers with an error the exception filter maps to 503', () => {
    const b = breaker();
    b.failed('cannot connect: connect ECONNREFUSED');
    const error = b.unavailable();
    expect({ name: error.name, code: error.code, message: error.message }).toEqual({
      name: 'PostgresUnavailableError',
      code: '08006',
      message: 'PostgreSQL unavailable: cannot connect: connect ECONNREFUSED',
    });
    expect(isDatabaseUnavailable(error)).toBe(true);
    expect(isDatabaseUnavailable({ name: 'QueryFailedError', driverError: error })).toBe(true);
  });

  it('closes only when proven, and ignores failures of what was sent before it closed', () => {
    const b = breaker();
    nowMs = 1_000;
    b.failed('silent');
    nowMs = 5_000;
    b.proven();
    expect(b.isOpen).toBe(false);
    expect(b.openReason).toBeUndefined();
    b.failed('a query sent during the outage timed out late', 4_000);
    expect(b.isOpen).toBe(false);
    b.failed('silent again', 5_500);
    expect(b.isOpen).toBe(true);
  });
});
