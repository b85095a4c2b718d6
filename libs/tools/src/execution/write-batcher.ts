/**
 * Group commit: writes submitted while one is in progress wait for it and then go to the
 * database together, in one statement or transaction of `write`. Nothing waits on a timer: a
 * lone write starts at once (after the current turn of the event loop, so writes finishing in
 * the same turn share it), and under load each batch holds what arrived during the previous one.
 *
 * Each submitter learns its own item's fate. When a batch fails, its items are written again
 * one by one, so one bad item (a foreign key gone, a value the database refuses) fails only
 * its own submitter, never its neighbours. When it fails because the database is out of reach
 * (`isOutage`), retrying item by item would only make each submitter wait out another timeout:
 * the batch and everything queued behind it fail at once instead.
 */
export class WriteBatcher<T, R> {
  private queue: Array<{ item: T; resolve: (result: R) => void; reject: (error: unknown) => void }> = [];
  private draining = false;

  /**
   * @param write writes the items (in order) and returns one result per item, in the same order;
   *              it must be all-or-nothing (one transaction, or one statement).
   */
  constructor(
    private readonly write: (items: T[]) => Promise<R[]>,
    private readonly maxBatch: number,
    private readonly isOutage: (error: unknown) => boolean = () => false,
  ) {}

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.draining) {
        this.draining = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const results = await this.write(batch.map((entry) => entry.item));
          batch.forEach((entry, i) => entry.resolve(results[i]));
        } catch (error) {
          if (this.isOutage(error)) {
            for (const entry of [...batch, ...this.queue.splice(0)]) entry.reject(error);
            continue;
          }
          if (batch.length === 1) {
            batch[0].reject(error);
            continue;
          }
          for (const entry of batch) {
            try {
              const [result] = await this.write([entry.item]);
              entry.resolve(result);
            } catch (single) {
              entry.reject(single);
            }
          }
        }
      }
    } finally {
      this.draining = false;
    }
  }
}
