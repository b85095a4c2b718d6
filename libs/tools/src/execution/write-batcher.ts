interface Entry<T, R> {
  item: T;
  /** True once the entry left the queue for a write: from then on it can no longer be replaced. */
  taken: boolean;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

/** A submitted item: its result, and a way to change it while it still waits in the queue. */
export interface BatchTicket<T, R> {
  readonly result: Promise<R>;
  /**
   * Swaps the item for another, in its place in the queue, when it has not gone to the database
   * yet: then `result` is the new item's. False (nothing changed) once it went or is going.
   */
  replace(item: T): boolean;
}

/**
 * Group commit: writes submitted while others are in progress wait for one to end and then go to
 * the database together, in one statement or transaction of `write`. Nothing waits on a timer: a
 * lone write starts at once (after the current turn of the event loop, so writes finishing in
 * the same turn share it), and under load each batch holds what arrived during the previous one.
 * Up to `maxInFlight` batches are written at the same time (each is all-or-nothing on its own;
 * a writer whose items depend on an earlier batch's must wait for that batch's result first).
 *
 * Each submitter learns its own item's fate. When a batch fails, its items are written again
 * one by one, so one bad item (a foreign key gone, a value the database refuses) fails only
 * its own submitter, never its neighbours. When it fails because the database is out of reach
 * (`isOutage`), retrying item by item would only make each submitter wait out another timeout:
 * the batch and everything queued behind it fail at once instead.
 */
export class WriteBatcher<T, R> {
  private queue: Array<Entry<T, R>> = [];
  private inFlight = 0;
  private scheduled = false;

  /**
   * @param write writes the items (in order) and returns one result per item, in the same order;
   *              it must be all-or-nothing (one transaction, or one statement).
   * @param maxInFlight batches written at the same time at most.
   */
  constructor(
    private readonly write: (items: T[]) => Promise<R[]>,
    private readonly maxBatch: number,
    private readonly isOutage: (error: unknown) => boolean = () => false,
    private readonly maxInFlight = 1,
  ) {}

  submit(item: T): Promise<R> {
    return this.enqueue(item).result;
  }

  enqueue(item: T): BatchTicket<T, R> {
    let entry!: Entry<T, R>;
    const result = new Promise<R>((resolve, reject) => {
      entry = { item, taken: false, resolve, reject };
    });
    this.queue.push(entry);
    this.schedule();
    return {
      result,
      replace: (next: T) => {
        if (entry.taken) return false;
        entry.item = next;
        return true;
      },
    };
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.launch();
    });
  }

  /** Starts batches while there is room for one and something to write. */
  private launch(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      for (const entry of batch) entry.taken = true;
      this.inFlight += 1;
      void this.writeBatch(batch).finally(() => {
        this.inFlight -= 1;
        this.launch();
      });
    }
  }

  private async writeBatch(batch: Array<Entry<T, R>>): Promise<void> {
    try {
      const results = await this.write(batch.map((entry) => entry.item));
      batch.forEach((entry, i) => entry.resolve(results[i]));
    } catch (error) {
      if (this.isOutage(error)) {
        const queued = this.queue.splice(0);
        for (const entry of queued) entry.taken = true;
        for (const entry of [...batch, ...queued]) entry.reject(error);
        return;
      }
      if (batch.length === 1) {
        batch[0].reject(error);
        return;
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
}
