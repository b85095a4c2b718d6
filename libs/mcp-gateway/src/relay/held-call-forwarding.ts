import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import { ClusterEventBus, clusterEvent } from '@app/redis';
import type { RelayCapabilities } from '@app/tools';
import { HeldCalls } from './held-calls';
import type { RequestStateBinding } from './request-state.seal';

/** A retry of a held call that reached another replica, passed to the one holding the call. */
export interface ForwardedRetry {
  /** The replica holding the call, and the one the agent's retry reached (which answers the agent). */
  to: string;
  from: string;
  /** Names this retry's answer. */
  reply: string;
  id: string;
  round: number;
  /** What the retry's state was sealed for (the forwarding replica opened and checked it). */
  binding: RequestStateBinding;
  capabilities: RelayCapabilities;
  inputResponses: Record<string, unknown>;
}

/** The holding replica's answer: `ack` at once, then the round's result or error. */
interface ForwardedAnswer {
  to: string;
  reply: string;
  kind: 'ack' | 'result' | 'error';
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

/** The agent cancelled a retry another replica is running the round of: that replica releases the call. */
interface ForwardedCancel {
  to: string;
  id: string;
}

const RETRY = clusterEvent<ForwardedRetry>('mcp.held_call.retry');
const CANCEL = clusterEvent<ForwardedCancel>('mcp.held_call.cancel');
const ANSWER = clusterEvent<ForwardedAnswer>('mcp.held_call.answer');

interface Waiting {
  resolve(result: unknown): void;
  reject(error: ProtocolError): void;
  /** The holder acknowledged: now the round may take as long as the call may. */
  acked(): void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Held calls across replicas: a 2026-07-28 agent's retry may reach any replica (the revision is
 * stateless), but the call it continues is held in one process. The replica the retry reached
 * passes it on over the cluster event bus (Redis pub/sub) to the replica named in the state; that
 * one acknowledges at once, runs the round and sends back its result (or error), which the first
 * replica gives the agent. Without an acknowledgement within `ackTimeoutMs` (the holder stopped,
 * or Redis is away) the agent gets -32603 `held_by_another_replica`. Pub/sub is at-most-once: a
 * lost answer ends the same way after `answerTimeoutMs`.
 */
@Injectable()
export class HeldCallForwarding implements OnModuleDestroy {
  private readonly logger = new Logger(HeldCallForwarding.name);
  private readonly waiting = new Map<string, Waiting>();
  private serve: ((retry: ForwardedRetry) => Promise<unknown>) | undefined;
  private cancel: ((id: string) => void) | undefined;
  private readonly unsubscribe: Array<() => void>;
  /** How long the holding replica has to acknowledge a retry. */
  ackTimeoutMs = 5_000;

  constructor(
    private readonly bus: ClusterEventBus,
    private readonly holds: HeldCalls,
  ) {
    this.unsubscribe = [
      bus.subscribe(RETRY, (retry) => {
        if (retry.to === this.holds.replica) void this.take(retry);
      }),
      bus.subscribe(ANSWER, (answer) => {
        if (answer.to === this.holds.replica) this.receive(answer);
      }),
      bus.subscribe(CANCEL, (cancel) => {
        if (cancel.to === this.holds.replica) this.cancel?.(cancel.id);
      }),
    ];
  }

  /** How this replica runs a round of a call it holds for a retry another replica received, and releases one whose agent cancelled. */
  handle(serve: (retry: ForwardedRetry) => Promise<unknown>, cancel: (id: string) => void): void {
    this.serve = serve;
    this.cancel = cancel;
  }

  /**
   * Passes a retry to the replica holding its call; resolves with the round's result, or rejects
   * with its (JSON-RPC) error. The agent cancelling its retry (`signal`) releases the call there.
   */
  forward(retry: Omit<ForwardedRetry, 'from' | 'reply'>, signal: AbortSignal): Promise<unknown> {
    const reply = randomUUID();
    const cancel = () => void this.bus.publish(CANCEL, { to: retry.to, id: retry.id });
    signal.addEventListener('abort', cancel, { once: true });
    return new Promise<unknown>((resolve, reject) => {
      const fail = (why: string) => {
        clearTimeout(waiting.timer);
        this.waiting.delete(reply);
        reject(
          new ProtocolError(
            ProtocolErrorCode.InternalError,
            `The call this requestState belongs to is held by another replica of the gateway, which ${why}`,
            {
              reason: 'held_by_another_replica',
            },
          ),
        );
      };
      const within = (ms: number, why: string) => setTimeout(() => fail(why), ms).unref();
      const waiting: Waiting = {
        resolve,
        reject,
        acked: () => {
          clearTimeout(waiting.timer);
          waiting.timer = within(this.answerTimeoutMs, 'did not send its answer in time');
        },
        timer: undefined,
      };
      waiting.timer = within(this.ackTimeoutMs, 'did not answer (it may have stopped)');
      this.waiting.set(reply, waiting);
      void this.bus.publish(RETRY, { ...retry, from: this.holds.replica, reply }).then((sent) => {
        if (!sent) fail('cannot be reached now');
      });
    }).finally(() => signal.removeEventListener('abort', cancel));
  }

  /** After the acknowledgement: the longest a round may take there (the call's hold, and its own timeouts within it). */
  private get answerTimeoutMs(): number {
    return this.holds.holdMs + this.holds.callBoundMs;
  }

  private receive(answer: ForwardedAnswer): void {
    const waiting = this.waiting.get(answer.reply);
    if (!waiting) return;
    if (answer.kind === 'ack') return waiting.acked();
    clearTimeout(waiting.timer);
    this.waiting.delete(answer.reply);
    if (answer.kind === 'result') return waiting.resolve(answer.result);
    const error = answer.error ?? { code: ProtocolErrorCode.InternalError, message: 'Internal error' };
    waiting.reject(new ProtocolError(error.code, error.message, error.data));
  }

  private async take(retry: ForwardedRetry): Promise<void> {
    const answer = (fields: Omit<ForwardedAnswer, 'to' | 'reply'>) =>
      this.bus.publish(ANSWER, { to: retry.from, reply: retry.reply, ...fields });
    if (!this.serve) return;
    await answer({ kind: 'ack' });
    try {
      await answer({ kind: 'result', result: await this.serve(retry) });
    } catch (error) {
      const relayed =
        error instanceof ProtocolError
          ? { code: error.code, message: error.message, ...(error.data !== undefined ? { data: error.data } : {}) }
          : { code: ProtocolErrorCode.InternalError, message: 'Internal error' };
      if (!(error instanceof ProtocolError)) this.logger.error({ err: error }, 'A forwarded round of a held call failed');
      await answer({ kind: 'error', error: relayed });
    }
  }

  onModuleDestroy(): void {
    for (const stop of this.unsubscribe) stop();
    for (const waiting of this.waiting.values()) clearTimeout(waiting.timer);
    this.waiting.clear();
  }
}
