/** What LineGatherer hands its batches to: pino's SonicBoom destination. */
export interface LineSink {
  write(chunk: string): boolean;
  flush?(callback?: (error?: Error) => void): void;
  flushSync?(): void;
  end?(): void;
}

/**
 * A pino destination that gathers lines in an array and hands them on, joined, once they reach
 * `minLength` characters (or `flushMs` after the first of them), so the sink sees one write per
 * batch. SonicBoom buffers too, but per line it measures the line and the whole pending buffer in bytes
 * (`Buffer.byteLength` of a growing concatenated string, which flattens it), about 4 µs a line in
 * a microbenchmark against under 1 µs here; with a line per request that was the request log's
 * largest cost. Lines reach the sink in the order they were written; `flush`, `flushSync` and
 * the process's beforeExit and exit hand on what is pending first (before an asynchronous sink's
 * own flush on exit, as pino registers for its SonicBoom destination; a synchronous sink writes
 * it at once).
 */
export class LineGatherer {
  private lines: string[] = [];
  private length = 0;
  /** Armed while lines wait (so a dropped logger with nothing pending is not kept alive). */
  private timer: NodeJS.Timeout | undefined;
  private readonly ref = new WeakRef(this);
  private readonly onTimer = () => {
    this.timer = undefined;
    this.handOn();
  };

  constructor(
    private readonly sink: LineSink,
    private readonly minLength: number,
    private readonly flushMs: number,
  ) {
    for (const ref of atExit) if (!ref.deref()) atExit.delete(ref);
    atExit.add(this.ref);
  }

  write(line: string): boolean {
    this.lines.push(line);
    this.length += line.length;
    if (this.length >= this.minLength) this.handOn();
    else if (!this.timer && this.flushMs > 0) {
      this.timer = setTimeout(this.onTimer, this.flushMs);
      this.timer.unref();
    }
    return true;
  }

  flush(callback?: (error?: Error) => void): void {
    this.handOn();
    if (this.sink.flush) this.sink.flush(callback);
    else callback?.();
  }

  flushSync(): void {
    this.handOn();
    this.sink.flushSync?.();
  }

  end(): void {
    this.handOn();
    clearTimeout(this.timer);
    this.timer = undefined;
    atExit.delete(this.ref);
    this.sink.end?.();
  }

  /** Hands what is gathered to the sink (also on the process's beforeExit and exit). */
  handOn(): void {
    const { lines } = this;
    if (lines.length === 0) return;
    this.lines = [];
    this.length = 0;
    this.sink.write(lines.length === 1 ? lines[0] : lines.join(''));
  }
}

/**
 * The live gatherers, for one pair of process hooks (not a pair per logger): on beforeExit and
 * exit each hands on what it holds, before an asynchronous sink's own exit flush (pino registers
 * its SonicBoom's; these are prepended, so they run first).
 */
const atExit = new Set<WeakRef<LineGatherer>>();
export const handOnAtExit = (): void => {
  for (const ref of atExit) {
    const gatherer = ref.deref();
    if (gatherer) gatherer.handOn();
    else atExit.delete(ref);
  }
};
process.prependListener('beforeExit', handOnAtExit);
process.prependListener('exit', handOnAtExit);
