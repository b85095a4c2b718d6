import { handOnAtExit, LineGatherer, LineSink } from './line-gatherer';

/** A sink that records what it is handed and how it was flushed. */
function recordingSink(): LineSink & { chunks: string[]; flushes: string[] } {
  const chunks: string[] = [];
  const flushes: string[] = [];
  return {
    chunks,
    flushes,
    write(chunk: string) {
      chunks.push(chunk);
      return true;
    },
    flush(callback?: (error?: Error) => void) {
      flushes.push('flush');
      callback?.();
    },
    flushSync() {
      flushes.push('flushSync');
    },
    end() {
      flushes.push('end');
    },
  };
}

describe('LineGatherer', () => {
  const gatherers: LineGatherer[] = [];
  afterEach(() => {
    for (const gatherer of gatherers.splice(0)) gatherer.end();
  });
  function gather(sink: LineSink, minLength: number, flushMs = 0): LineGatherer {
    const gatherer = new LineGatherer(sink, minLength, flushMs);
    gatherers.push(gatherer);
    return gatherer;
  }

  it('hands lines on joined, in order, once they reach the minimum length', () => {
    const sink = recordingSink();
    const lines = gather(sink, 10);
    lines.write('one\n');
    lines.write('two\n');
    expect(sink.chunks).toEqual([]);
    lines.write('three\n');
    expect(sink.chunks).toEqual(['one\ntwo\nthree\n']);
    lines.write('a line longer than ten\n');
    expect(sink.chunks).toEqual(['one\ntwo\nthree\n', 'a line longer than ten\n']);
  });

  it('hands on what is pending on flush and flushSync, before the sink flushes', () => {
    const sink = recordingSink();
    const lines = gather(sink, 1000);
    lines.write('one\n');
    const done = jest.fn();
    lines.flush(done);
    expect(sink.chunks).toEqual(['one\n']);
    expect(done).toHaveBeenCalled();
    lines.write('two\n');
    lines.flushSync();
    expect(sink.chunks).toEqual(['one\n', 'two\n']);
    expect(sink.flushes).toEqual(['flush', 'flushSync']);
  });

  it('hands on what is pending every flushMs', async () => {
    const sink = recordingSink();
    const lines = gather(sink, 1000, 20);
    lines.write('one\n');
    lines.write('two\n');
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(sink.chunks).toEqual(['one\ntwo\n']);
  });

  it('hands on what is pending when the process is about to exit, through one pair of process hooks', () => {
    const exitHooks = process.listeners('exit').length;
    const sink = recordingSink();
    const first = gather(sink, 1000);
    const second = gather(sink, 1000);
    // One hook for every gatherer, registered once, ahead of pino's own exit flush.
    expect(process.listeners('exit')).toHaveLength(exitHooks);
    expect(process.listeners('exit')).toContain(handOnAtExit);
    expect(process.listeners('beforeExit')).toContain(handOnAtExit);
    first.write('first\n');
    second.write('second\n');
    handOnAtExit();
    expect(sink.chunks).toEqual(['first\n', 'second\n']);
    // An ended gatherer is no longer handed anything at exit.
    second.end();
    second.write('late\n');
    handOnAtExit();
    expect(sink.chunks).toEqual(['first\n', 'second\n']);
  });
});
