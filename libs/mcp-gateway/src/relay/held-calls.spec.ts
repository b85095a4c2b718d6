import { RelayExpiredError } from '@app/tools';
import type { RelayedRequest } from '@app/tools';
import { HeldCall, HeldCalls } from './held-calls';

const SAMPLING: RelayedRequest = { method: 'sampling/createMessage', params: { maxTokens: 10, messages: [] } };
const ROOTS: RelayedRequest = { method: 'roots/list' };

/** A call whose work is driven by the test: what it asks, and when it ends. */
function held(): { call: HeldCall<string>; signal: () => AbortSignal; finish: (value: string) => void } {
  const call = new HeldCall<string>('usr_alice', { sampling: {} }, null);
  let signal: AbortSignal | undefined;
  let finish: (value: string) => void = () => undefined;
  call.begin((s) => {
    signal = s;
    return new Promise<string>((resolve) => (finish = resolve));
  });
  return { call, signal: () => signal!, finish: (value) => finish(value) };
}

describe('HeldCall', () => {
  it('hands the requests the upstream sends together to one round, and each answer to its request', async () => {
    const { call, finish } = held();
    const upstream = new AbortController();
    const first = call.ask(SAMPLING, upstream.signal);
    const second = call.ask(ROOTS, upstream.signal);
    await expect(call.next()).resolves.toBe('asks');
    expect(call.pending()).toEqual({ 'input-1': SAMPLING, 'input-2': ROOTS });
    // An answer for a key it never asked is ignored; an unanswered request is asked again.
    call.answer({ 'input-2': { roots: [] }, 'input-9': { roots: [] } });
    await expect(second).resolves.toEqual({ roots: [] });
    await expect(call.next()).resolves.toBe('asks');
    expect(call.pending()).toEqual({ 'input-1': SAMPLING });
    call.answer({ 'input-1': { role: 'assistant' } });
    await expect(first).resolves.toEqual({ role: 'assistant' });
    finish('done');
    await expect(call.next()).resolves.toBe('settled');
    expect(call.result()).toBe('done');
  });

  it('drops a request the upstream cancelled', async () => {
    const { call, finish } = held();
    const upstream = new AbortController();
    const asked = call.ask(SAMPLING, upstream.signal);
    upstream.abort();
    await expect(asked).rejects.toThrow('cancelled');
    expect(call.pending()).toEqual({});
    finish('done');
    await expect(call.next()).resolves.toBe('settled');
  });

  it('on release fails the waiting requests with RelayExpiredError and aborts the work', async () => {
    const { call, signal } = held();
    const asked = call.ask(SAMPLING, new AbortController().signal);
    call.release(new RelayExpiredError('gone'));
    await expect(asked).rejects.toBeInstanceOf(RelayExpiredError);
    expect(signal().aborted).toBe(true);
    await expect(call.ask(ROOTS, new AbortController().signal)).rejects.toBeInstanceOf(RelayExpiredError);
  });

  it("gives the work's failure to the round that collects it", async () => {
    const call = new HeldCall<string>('usr_alice', {}, null);
    call.begin(() => Promise.reject(new Error('upstream failed')));
    await expect(call.next()).resolves.toBe('settled');
    expect(() => call.result()).toThrow('upstream failed');
  });
});

describe('HeldCalls', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('releases a parked call after the hold, and never one that was resumed or is over', () => {
    const holds = new HeldCalls({ upstreams: { relayHoldMs: 1_000 } } as never);
    const parked = holds.start<string, null>('usr_alice', {}, null);
    const expired = jest.fn();
    holds.park(parked, expired);
    expect(holds.find(parked.id)).toBe(parked);
    jest.advanceTimersByTime(999);
    expect(expired).not.toHaveBeenCalled();
    jest.advanceTimersByTime(1);
    expect(expired).toHaveBeenCalledTimes(1);
    expect(holds.find(parked.id)).toBeUndefined();

    const resumed = holds.start<string, null>('usr_alice', {}, null);
    const kept = jest.fn();
    holds.park(resumed, kept);
    holds.resume(resumed);
    jest.advanceTimersByTime(5_000);
    expect(kept).not.toHaveBeenCalled();
    holds.forget(resumed);
    expect(holds.size).toBe(0);
  });
});
