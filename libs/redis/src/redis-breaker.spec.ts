import { isRedisOutage, RedisBreaker, RedisUnavailableError } from './redis-breaker';

describe('RedisBreaker', () => {
  let now = 1_000;
  const clock = () => now;

  it('starts open (nothing proven), closes on proof, and opens on the first failure after it', () => {
    const breaker = new RedisBreaker(clock);
    const seen: boolean[] = [];
    breaker.onChange((open) => seen.push(open));
    expect(breaker.isOpen).toBe(true);
    expect(() => breaker.check()).toThrow(RedisUnavailableError);
    breaker.proven();
    expect(breaker.isOpen).toBe(false);
    expect(breaker.outageSinceMs).toBeUndefined();
    expect(() => breaker.check()).not.toThrow();
    now = 2_000;
    breaker.failed('no answer to PING within 1000 ms', 1_500);
    expect(breaker.isOpen).toBe(true);
    expect(breaker.openReason).toBe('no answer to PING within 1000 ms');
    expect(breaker.outageSinceMs).toBe(1_500);
    // Further failures change nothing: the outage began at the first one.
    breaker.failed('connection closed', 1_900);
    expect(breaker.outageSinceMs).toBe(1_500);
    expect(seen).toEqual([false, true]);
  });

  it('ignores the failure of an operation sent before it last closed', () => {
    now = 10_000;
    const breaker = new RedisBreaker(clock);
    breaker.proven();
    breaker.failed('Command timed out', 9_999);
    expect(breaker.isOpen).toBe(false);
    breaker.failed('Command timed out', 10_000);
    expect(breaker.isOpen).toBe(true);
  });

  it('counts a missing answer as an outage, an error reply as an answer', () => {
    const reply = new Error('WRONGTYPE Operation against a key holding the wrong kind of value');
    reply.name = 'ReplyError';
    expect(isRedisOutage(reply)).toBe(false);
    expect(isRedisOutage(new Error('Command timed out'))).toBe(true);
    expect(isRedisOutage(new RedisUnavailableError('x'))).toBe(true);
  });
});
