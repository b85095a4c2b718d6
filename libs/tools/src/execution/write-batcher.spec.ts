import { WriteBatcher } from './write-batcher';

/** A writer that records its batches and can be held open, like a transaction in progress. */
function recordingWriter(refuse: (item: number) => boolean = () => false) {
  const batches: number[][] = [];
  const waiting: Array<() => void> = [];
  let held = false;
  const write = async (items: number[]): Promise<string[]> => {
    batches.push(items);
    if (held) await new Promise<void>((resolve) => waiting.push(resolve));
    if (items.some(refuse)) throw new Error(`refused ${items.filter(refuse).join(',')}`);
    return items.map((item) => `wrote ${item}`);
  };
  return {
    batches,
    write,
    hold: () => (held = true),
    release: () => {
      held = false;
      for (const release of waiting.splice(0)) release();
    },
  };
}

describe('WriteBatcher', () => {
  it('writes a lone item at once, alone', async () => {
    const writer = recordingWriter();
    const batcher = new WriteBatcher(writer.write, 10);
    await expect(batcher.submit(1)).resolves.toBe('wrote 1');
    expect(writer.batches).toEqual([[1]]);
  });

  it('groups items submitted together, and those that arrive while a write is in progress', async () => {
    const writer = recordingWriter();
    const batcher = new WriteBatcher(writer.write, 10);
    writer.hold();
    const first = [batcher.submit(1), batcher.submit(2)];
    await new Promise((resolve) => setImmediate(resolve));
    const later = [batcher.submit(3), batcher.submit(4), batcher.submit(5)];
    writer.release();
    expect(await Promise.all([...first, ...later])).toEqual(['wrote 1', 'wrote 2', 'wrote 3', 'wrote 4', 'wrote 5']);
    expect(writer.batches).toEqual([
      [1, 2],
      [3, 4, 5],
    ]);
  });

  it('never puts more than maxBatch items in one write, and keeps their order', async () => {
    const writer = recordingWriter();
    const batcher = new WriteBatcher(writer.write, 2);
    await Promise.all([1, 2, 3, 4, 5].map((item) => batcher.submit(item)));
    expect(writer.batches).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('when a batch fails, writes its items one by one so only the bad one fails', async () => {
    const writer = recordingWriter((item) => item === 2);
    const batcher = new WriteBatcher(writer.write, 10);
    const results = await Promise.allSettled([1, 2, 3].map((item) => batcher.submit(item)));
    expect(results).toEqual([
      { status: 'fulfilled', value: 'wrote 1' },
      { status: 'rejected', reason: new Error('refused 2') },
      { status: 'fulfilled', value: 'wrote 3' },
    ]);
    expect(writer.batches).toEqual([[1, 2, 3], [1], [2], [3]]);
    // And it keeps working afterwards.
    await expect(batcher.submit(4)).resolves.toBe('wrote 4');
  });

  it('when the database is out of reach, fails the batch and everything queued behind it at once, without retries', async () => {
    const writer = recordingWriter(() => true);
    const batcher = new WriteBatcher(writer.write, 10, (error) => /refused/.test(String(error)));
    writer.hold();
    const first = [batcher.submit(1), batcher.submit(2)];
    await new Promise((resolve) => setImmediate(resolve));
    const queued = [batcher.submit(3), batcher.submit(4)];
    writer.release();
    const results = await Promise.allSettled([...first, ...queued]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    expect(writer.batches).toEqual([[1, 2]]);
  });

  it('replaces an item still in the queue, in its place; refuses once it went to the database', async () => {
    const writer = recordingWriter();
    const batcher = new WriteBatcher(writer.write, 10);
    const first = batcher.enqueue(1);
    const second = batcher.enqueue(2);
    expect(first.replace(10)).toBe(true);
    expect(await Promise.all([first.result, second.result])).toEqual(['wrote 10', 'wrote 2']);
    expect(first.replace(11)).toBe(false);
    expect(writer.batches).toEqual([[10, 2]]);
  });

  it('refuses to replace an item whose batch is being written', async () => {
    const writer = recordingWriter();
    const batcher = new WriteBatcher(writer.write, 10);
    writer.hold();
    const ticket = batcher.enqueue(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(ticket.replace(2)).toBe(false);
    writer.release();
    await expect(ticket.result).resolves.toBe('wrote 1');
  });

  it('writes up to maxInFlight batches at the same time, and no more', async () => {
    const writer = recordingWriter();
    const batcher = new WriteBatcher(writer.write, 10, undefined, 2);
    writer.hold();
    const pending = [batcher.submit(1)];
    await new Promise((resolve) => setImmediate(resolve));
    pending.push(batcher.submit(2));
    await new Promise((resolve) => setImmediate(resolve));
    pending.push(batcher.submit(3), batcher.submit(4));
    await new Promise((resolve) => setImmediate(resolve));
    expect(writer.batches).toEqual([[1], [2]]);
    writer.release();
    expect(await Promise.all(pending)).toEqual(['wrote 1', 'wrote 2', 'wrote 3', 'wrote 4']);
    expect(writer.batches).toEqual([[1], [2], [3, 4]]);
  });
});
