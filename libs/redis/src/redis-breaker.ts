/** Thrown at once, without touching Redis, while the breaker is open. */
export class RedisUnavailableError extends Error {
  constructor(reason: string) {
    super(`Redis unavailable: ${reason}`);
    this.name = 'RedisUnavailableError';
  }
}

/** A reply (even an error reply) proves Redis answered; anything else (timeout, closed socket) does not. */
export function isRedisOutage(error: unknown): boolean {
  return !(error instanceof Error && error.name === 'ReplyError');
}

export type BreakerListener = (open: boolean) => void;

/**
 * Whether this process trusts Redis, for every Redis user at once. Opens on the first failed
 * operation or probe (a timeout counts); closes only when told that probes answered. Starts open:
 * nothing has been proven at boot. Times are milliseconds on one clock (Date.now by default).
 */
export class RedisBreaker {
  private opened = true;
  private reason = 'not connected yet';
  /** Send time of the operation whose failure opened the breaker (the outage began no later). */
  private failedFromMs = 0;
  private closedAtMs = 0;
  private readonly listeners = new Set<BreakerListener>();

  constructor(private readonly now: () => number = Date.now) {}

  get isOpen(): boolean {
    return this.opened;
  }

  get openReason(): string | undefined {
    return this.opened ? this.reason : undefined;
  }

  /** When the current outage began at the latest (undefined while closed). */
  get outageSinceMs(): number | undefined {
    return this.opened ? this.failedFromMs : undefined;
  }

  /** Throws RedisUnavailableError while open. */
  check(): void {
    if (this.opened) throw new RedisUnavailableError(this.reason);
  }

  /**
   * An operation sent at `sentAtMs` failed without an answer. Ignored when it was sent before the
   * breaker last closed: it says nothing about Redis since then.
   */
  failed(reason: string, sentAtMs = this.now()): void {
    if (this.opened || sentAtMs < this.closedAtMs) return;
    this.opened = true;
    this.reason = reason;
    this.failedFromMs = sentAtMs;
    this.emit(true);
  }

  /** Probes on every connection answered: Redis is back. */
  proven(): void {
    if (!this.opened) return;
    this.opened = false;
    this.closedAtMs = this.now();
    this.emit(false);
  }

  /** Called on every transition with the new state (true: open). */
  onChange(listener: BreakerListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(open: boolean): void {
    for (const listener of this.listeners) listener(open);
  }
}
