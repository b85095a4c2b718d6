import { ConcurrencyLimit } from './concurrency-limit';

describe('ConcurrencyLimit', () => {
  it('admits up to the limit and hands freed slots to waiters in order', async () => {
    const limit = new ConcurrencyLimit(2);
    const signal = new AbortController().signal;
    const order: string[] = [];
    const a = await limit.acquire(signal);
    const b = await limit.acquire(signal);
    const c = limit.acquire(signal).then((release) => (order.push('c'), release));
    const d = limit.acquire(signal).then((release) => (order.push('d'), release));
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual([]);
    a();
    a(); // releasing twice frees one slot only
    (await c)();
    b();
    (await d)();
    expect(order).toEqual(['c', 'd']);
    const e = await limit.acquire(signal);
    const f = await limit.acquire(signal);
    e();
    f();
  });

  it('drops a waiter whose call is aborted', async () => {
    const limit = new ConcurrencyLimit(1);
    const held = await limit.acquire(new AbortController().signal);
    const controller = new AbortController();
    const waiting = limit.acquire(controller.signal);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'ABORTED' });
    held();
    const next = await limit.acquire(new AbortController().signal);
    next();
  });
});
