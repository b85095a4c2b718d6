/**
 * Delays between reconnection attempts: doubling from `initialMs`, capped at `maxMs`, each drawn
 * from the upper half of its step ("equal jitter") so that many gateways losing the same upstream
 * do not all knock on its door in the same millisecond, yet none retries sooner than half a step.
 */
export class ReconnectBackoff {
  private failures = 0;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next attempt; each call counts one more failure. */
  next(): number {
    const step = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.failures, 40));
    this.failures += 1;
    return Math.round(step / 2 + this.random() * (step / 2));
  }

  /** After a successful connection the next failure starts from the first step again. */
  reset(): void {
    this.failures = 0;
  }

  get attempts(): number {
    return this.failures;
  }
}
