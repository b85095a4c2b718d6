import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { APP_CONFIG, AppConfig } from '@app/core';
import { RelayExpiredError } from '@app/tools';
import type { RelayCapabilities, RelayedRequest } from '@app/tools';

/** A request the upstream made of the agent, waiting for the agent's answer (it comes with a retry). */
interface Ask {
  request: RelayedRequest;
  resolve(answer: Record<string, unknown>): void;
  reject(error: Error): void;
}

/** What a round of a held call ends with: the call's outcome, or questions for the agent. */
export type HeldEvent = 'settled' | 'asks';

/**
 * One agent request (tools/call, prompts/get, resources/read) of a 2026-07-28 agent, held open
 * across the agent's rounds: the work (the upstream call) runs once, with its own abort signal; the
 * 2025-era upstream's requests in the middle of it wait here (`ask`) until a retry brings the answers.
 */
export class HeldCall<T, O = unknown> {
  readonly id = randomUUID();
  /** The round the next retry must name (its sealed requestState carries it): a state is good for one retry. */
  round = 0;
  /** What the agent declared, as of its latest round (decides what is relayed). */
  capabilities: RelayCapabilities;
  private readonly controller = new AbortController();
  private readonly asks = new Map<string, Ask>();
  private asked = 0;
  private outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  private readonly waiters = new Set<() => void>();
  timer: NodeJS.Timeout | undefined;

  constructor(
    readonly userId: string,
    capabilities: RelayCapabilities,
    /** Whose call it is, for whoever takes a round up (the holder's business). */
    readonly owner: O,
  ) {
    this.capabilities = capabilities;
  }

  /** Starts the work (once), under the call's own signal: the agent's rounds come and go, the call runs on. */
  begin(work: (signal: AbortSignal) => Promise<T>): void {
    work(this.controller.signal).then(
      (value) => this.settle({ ok: true, value }),
      (error: unknown) => this.settle({ ok: false, error }),
    );
  }

  /** An upstream's request: goes to the agent in the next InputRequiredResult; resolves with its answer. */
  ask(request: RelayedRequest, signal: AbortSignal): Promise<Record<string, unknown>> {
    if (this.controller.signal.aborted) return Promise.reject(new RelayExpiredError('The held call was released'));
    const key = `input-${++this.asked}`;
    return new Promise((resolve, reject) => {
      const ask: Ask = {
        request,
        resolve: (answer) => {
          this.asks.delete(key);
          resolve(answer);
        },
        reject: (error) => {
          this.asks.delete(key);
          reject(error);
        },
      };
      this.asks.set(key, ask);
      // The upstream gave up on its request (cancelled, timed out): it is asked no more.
      signal.addEventListener('abort', () => this.asks.get(key)?.reject(new Error('The upstream cancelled its request')), { once: true });
      this.wake();
    });
  }

  /** The agent's answers (a retry's inputResponses, by key); a request left unanswered is asked again. */
  answer(responses: Record<string, unknown>): void {
    for (const [key, answer] of Object.entries(responses)) {
      const ask = this.asks.get(key);
      if (ask && typeof answer === 'object' && answer !== null) ask.resolve(answer as Record<string, unknown>);
    }
  }

  /** The requests waiting for the agent, by the keys its answers must use. */
  pending(): Record<string, RelayedRequest> {
    return Object.fromEntries([...this.asks].map(([key, ask]) => [key, ask.request]));
  }

  /** Waits until the call has its outcome (preferred) or the upstream waits for answers; requests sent together go out together. */
  async next(): Promise<HeldEvent> {
    for (;;) {
      if (this.outcome) return 'settled';
      if (this.asks.size > 0) {
        await new Promise((resolve) => setImmediate(resolve));
        if (this.outcome) return 'settled';
        if (this.asks.size > 0) return 'asks';
        continue;
      }
      await new Promise<void>((resolve) => this.waiters.add(resolve));
    }
  }

  /** The work's value, or its error thrown (once the call has settled). */
  result(): T {
    if (!this.outcome) throw new Error('The held call has not settled');
    if (!this.outcome.ok) throw this.outcome.error;
    return this.outcome.value;
  }

  /** Ends the call: the upstream's waiting requests fail with `error`, the work is aborted (the upstream sees the cancellation). */
  release(error: RelayExpiredError): void {
    for (const ask of [...this.asks.values()]) ask.reject(error);
    this.controller.abort(error);
  }

  private settle(outcome: NonNullable<HeldCall<T, O>['outcome']>): void {
    this.outcome = outcome;
    this.wake();
  }

  private wake(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const waiter of waiters) waiter();
  }
}

/**
 * The calls this replica holds for 2026-07-28 agents (see AgentRequestRelays.run). A held call is
 * this process's: a retry that reaches another replica is told so (`replica` in its sealed state).
 * A parked call (its InputRequiredResult sent, the retry not yet in) is released after `holdMs`
 * (MCP_RELAY_HOLD_TIMEOUT_MS); on shutdown every held call is released.
 */
@Injectable()
export class HeldCalls implements OnModuleDestroy {
  /** This process, as named in the states it seals. */
  readonly replica = randomUUID();
  readonly holdMs: number;
  /** The longest a call may run between two rounds (the tools' maximum timeout): how long a forwarded round is waited for, besides the hold. */
  readonly callBoundMs: number;
  private readonly calls = new Map<string, HeldCall<unknown>>();

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.holdMs = config.upstreams.relayHoldMs;
    this.callBoundMs = config.tools?.maxTimeoutMs ?? 0;
  }

  start<T, O>(userId: string, capabilities: RelayCapabilities, owner: O): HeldCall<T, O> {
    return new HeldCall<T, O>(userId, capabilities, owner);
  }

  find(id: string): HeldCall<unknown> | undefined {
    return this.calls.get(id);
  }

  /** The call waits for its agent: known by id until the retry comes, released by `expire` if it does not in time. */
  park(call: HeldCall<unknown>, expire: () => void): void {
    clearTimeout(call.timer);
    this.calls.set(call.id, call);
    call.timer = setTimeout(() => {
      this.calls.delete(call.id);
      expire();
    }, this.holdMs);
    call.timer.unref();
  }

  /** A retry took the call up again (it is not released while the round runs). */
  resume(call: HeldCall<unknown>): void {
    clearTimeout(call.timer);
  }

  /** The call is over: its outcome went to the agent. */
  forget(call: HeldCall<unknown>): void {
    clearTimeout(call.timer);
    this.calls.delete(call.id);
  }

  /** Calls held right now (parked or in a round). */
  get size(): number {
    return this.calls.size;
  }

  onModuleDestroy(): void {
    for (const call of this.calls.values()) {
      clearTimeout(call.timer);
      call.release(new RelayExpiredError('The gateway is shutting down'));
    }
    this.calls.clear();
  }
}
