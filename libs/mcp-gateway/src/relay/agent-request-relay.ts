import { Injectable, Logger } from '@nestjs/common';
import { CLIENT_CAPABILITIES_META_KEY, LOG_LEVEL_META_KEY, ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import type { InputRequiredResult, LoggingLevel, Server, ServerContext } from '@modelcontextprotocol/server';
import { AuditAction, auditEvent, AuditService } from '@app/audit';
import { isLogLevel, relayCapabilitiesOf, RelayExpiredError } from '@app/tools';
import type { ClientRequestRelay, InputRequired, RelayCapabilities, RelayedRequest, RelayOutcome } from '@app/tools';
import type { McpCaller } from '../tools/mcp-caller';
import { ForwardedRetry, HeldCallForwarding } from './held-call-forwarding';
import { HeldCall, HeldCalls, HeldEvent } from './held-calls';
import { HeldCallRef, RequestStateBinding, RequestStateSeal } from './request-state.seal';

/** A 2025-era request relayed to the agent may wait for a person (an elicitation): as long as the SDK's own shim allows. */
const RELAYED_REQUEST_TIMEOUT_MS = 10 * 60_000;
const MAX_AUDITED_TEXT = 500;

/** What an agent's request reaches upstream: a federated tool, prompt or resource (URI). */
export interface RelayTarget {
  kind: 'tool' | 'prompt' | 'resource';
  /** The tool's id, the prompt's name or the resource's URI, as the agent named it. */
  id: string;
  /** The provider behind a tool (a prompt's or resource's upstream follows from its name). */
  upstream?: string;
}

/** Whose a held call is: the user, target and upstream its states are sealed for, and the caller (logs). */
interface Owner {
  binding: RequestStateBinding;
  caller: McpCaller;
  target: RelayTarget;
  /** The round running now, if any (between rounds, and in a round another replica passed on, none: notifications are dropped). */
  channel?: RoundChannel;
}

/** One request's relay, and the InputRequiredResult to answer with when a 2026-07-28 upstream asked for input. */
interface CallRelay {
  relay: ClientRequestRelay;
  /** Set when the upstream answered input_required: the agent gets this (its requestState sealed) instead of a result. */
  inputRequired(): InputRequiredResult | undefined;
}

/** Reports a call's progress to the agent: on the request of the round running now, under that request's progress token. */
export type ProgressSink = (progress: number, total?: number, message?: string) => void;

/**
 * The work of one request (the upstream call), given the agent's relay, the signal that cancels
 * it, and where its progress goes (undefined: the agent did not ask for progress).
 */
export type RelayedWork<T> = (relay: ClientRequestRelay, signal: AbortSignal, progress: ProgressSink | undefined) => Promise<T>;

/** The agent's request a held call's notifications go to: the one of the round running now. */
interface RoundChannel {
  notify: ServerContext['mcpReq']['notify'];
  progressToken: string | number | undefined;
}

function channelOf(ctx: ServerContext): RoundChannel {
  const token = (ctx.mcpReq as { _meta?: { progressToken?: unknown } })._meta?.progressToken;
  return {
    notify: (notification) => ctx.mcpReq.notify(notification),
    progressToken: typeof token === 'string' || typeof token === 'number' ? token : undefined,
  };
}

/**
 * Connects a federated tool's (prompt's, resource's) server→client requests to the agent that called it:
 * - 2025-era agent (a session, over HTTP or WebSocket): the upstream's sampling, elicitation or
 *   roots request goes to the agent as a request related to its call (on that call's stream), and
 *   the agent's answer goes back to the upstream;
 * - 2026-07-28 agent, 2026-07-28 upstream: the upstream's InputRequiredResult goes to the agent,
 *   its requestState sealed (RequestStateSeal: bound to user, target and upstream); the agent's
 *   retry carries its answers, which go to the upstream with the upstream's own state;
 * - 2026-07-28 agent, 2025-era upstream (which asks with requests in the middle of the call): the
 *   gateway holds the upstream call open (HeldCalls), answers the agent with an InputRequiredResult
 *   carrying the upstream's requests and a sealed state naming the held call and its round; the
 *   retry's answers go to the waiting requests and the call runs on, to its result or to the next
 *   round. A state is good for one retry, for the same user and target, until the hold runs out
 *   (MCP_RELAY_HOLD_TIMEOUT_MS: then the call is released, cancelled upstream, and the unanswered
 *   requests are audited as expired). A retry reaching another replica is passed on to the one
 *   holding the call (HeldCallForwarding, over Redis).
 * A 2025-era agent gets a 2026-07-28 upstream's rounds as real requests on its session (the SDK's
 * input-required shim). Only what the agent declared is relayed (the SDK refuses the rest with
 * the spec's errors: -32021 on 2026-07-28; the upstream's request gets -32601 on the 2025 era).
 * Every request relayed, or refused, is audited: its method, what it asked (an elicitation's
 * message or URL, never an answer), of whom.
 */
@Injectable()
export class AgentRequestRelays {
  private readonly logger = new Logger(AgentRequestRelays.name);

  constructor(
    private readonly seal: RequestStateSeal,
    private readonly audits: AuditService,
    private readonly holds: HeldCalls,
    private readonly forwarding: HeldCallForwarding,
  ) {
    forwarding.handle(
      (retry) => this.resumeForwarded(retry),
      (id) => {
        const call = this.holds.find(id);
        if (call) this.cancelled(call);
      },
    );
  }

  /**
   * Runs one request of `caller` to `target` (`work`: the upstream call, given the agent's relay)
   * and answers with its result, or with an InputRequiredResult when the upstream needs the
   * agent's input first (see above). The request's log level is its own (2026-07-28 `_meta`) or
   * `sessionLevel` (what a 2025-era agent set with logging/setLevel); the upstream's log messages
   * about the request go to the agent on the request's stream. Throws -32602 (the SDK's own answer
   * to a state it cannot verify) when the retry's requestState was not sealed by this gateway for
   * this user, target and upstream, has expired, or was used already; -32603 when the call it names
   * is held by another replica that cannot be reached.
   */
  async run<T>(
    server: Server,
    caller: McpCaller,
    target: RelayTarget,
    ctx: ServerContext,
    sessionLevel: LoggingLevel | null | undefined,
    work: RelayedWork<T>,
  ): Promise<T | InputRequiredResult> {
    const envelope = (ctx.mcpReq as { envelope?: Record<string, unknown> }).envelope;
    const binding = bindingOf(caller, target);
    const opened = this.openState(binding, ctx.mcpReq.requestState(), caller);
    if (envelope === undefined) {
      const calling = this.relayOf(server, caller, target, ctx, sessionLevel, binding, opened?.upstreamState);
      const channel = channelOf(ctx);
      const result = await work(
        calling.relay,
        ctx.mcpReq.signal,
        channel.progressToken === undefined ? undefined : this.progressTo(() => channel),
      );
      return calling.inputRequired() ?? result;
    }
    const capabilities = relayCapabilitiesOf(envelope[CLIENT_CAPABILITIES_META_KEY]);
    if (opened?.held) return this.resume<T>(opened.held, binding, caller, ctx, capabilities);
    const call = this.holds.start<T | InputRequiredResult, Owner>(caller.principal.userId, capabilities, {
      binding,
      caller,
      target,
      channel: channelOf(ctx),
    });
    const calling = this.relayOf(server, caller, target, ctx, sessionLevel, binding, opened?.upstreamState, call);
    // Asked for at the start (the upstream is asked for progress then), reported to whichever round runs.
    const progress = channelOf(ctx).progressToken === undefined ? undefined : this.progressTo(() => call.owner.channel);
    call.begin(async (signal) => {
      const result = await work(calling.relay, signal, progress);
      return calling.inputRequired() ?? result;
    });
    return this.round(call, ctx.mcpReq.signal, undefined, channelOf(ctx));
  }

  /**
   * A request to a tool of this gateway's own (BUILTIN_PROVIDER) that carries no requestState:
   * such a tool never asks the agent anything, so it runs with no relay, no held call and no
   * sealed state (a held call and its relay were ~2% of a built-in tools/call's CPU); the agent's
   * cancellation is its signal and its progress goes to the request, as on the relayed paths.
   */
  async runLocal<T>(ctx: ServerContext, work: (signal: AbortSignal, progress: ProgressSink | undefined) => Promise<T>): Promise<T> {
    const channel = channelOf(ctx);
    return work(ctx.mcpReq.signal, channel.progressToken === undefined ? undefined : this.progressTo(() => channel));
  }

  /**
   * A retry of a held call: its answers go to the upstream's waiting requests, and the call runs
   * on; a call another replica holds is passed on to it (HeldCallForwarding).
   */
  private async resume<T>(
    ref: HeldCallRef,
    binding: RequestStateBinding,
    caller: McpCaller,
    ctx: ServerContext,
    capabilities: RelayCapabilities,
  ): Promise<T | InputRequiredResult> {
    const inputResponses = (ctx.mcpReq as { inputResponses?: Record<string, unknown> }).inputResponses ?? {};
    if (ref.replica !== this.holds.replica) {
      this.logger.debug({ ...caller.correlation, replica: ref.replica }, 'Passing a retry on to the replica that holds its call');
      return (await this.forwarding.forward(
        { to: ref.replica, id: ref.id, round: ref.round, binding, capabilities, inputResponses },
        ctx.mcpReq.signal,
      )) as T | InputRequiredResult;
    }
    const call = this.take<T>(ref, binding);
    call.answer(inputResponses);
    return this.round(call, ctx.mcpReq.signal, capabilities, channelOf(ctx));
  }

  /** A round of a call this replica holds, for a retry another replica received. */
  private resumeForwarded(retry: ForwardedRetry): Promise<unknown> {
    const call = this.take<unknown>(retry, retry.binding);
    call.answer(retry.inputResponses);
    // The agent's request is on the other replica: its cancellation comes as a cluster event (HeldCallForwarding).
    return this.round(call, new AbortController().signal, retry.capabilities);
  }

  /**
   * The held call a retry names, taken up for a round (its state is then used up). Refused with
   * -32602 when it is not held here (completed, released, expired), or the state was used already.
   */
  private take<T>(ref: { id: string; round: number }, binding: RequestStateBinding): HeldCall<T | InputRequiredResult, Owner> {
    const call = this.holds.find(ref.id) as HeldCall<T | InputRequiredResult, Owner> | undefined;
    // Sealed for this binding, so a mismatch here means a state used twice or a call released.
    if (!call || call.round !== ref.round || !sameBinding(call.owner.binding, binding)) {
      this.logger.warn(
        { userId: binding.userId, target: binding.toolId, reason: 'call_not_held' },
        'Refused a retry of a call that is not held',
      );
      throw new ProtocolError(
        ProtocolErrorCode.InvalidParams,
        'Invalid or expired requestState: the call it belongs to is no longer held (it completed, was released, or this state was used already)',
        { reason: 'call_not_held' },
      );
    }
    call.round += 1;
    this.holds.resume(call);
    return call;
  }

  /**
   * One round of a 2026-07-28 agent's request: waits for the call's outcome (then answers with it)
   * or for the upstream's requests (then parks the call and answers with an InputRequiredResult).
   * An agent that cancels its request while the round runs releases the call.
   */
  private async round<T>(
    call: HeldCall<T | InputRequiredResult, Owner>,
    signal: AbortSignal,
    capabilities?: RelayCapabilities,
    channel?: RoundChannel,
  ): Promise<T | InputRequiredResult> {
    const { binding, caller, target } = call.owner;
    // What the agent declared in this round decides what is relayed from now on.
    if (capabilities) call.capabilities = capabilities;
    call.owner.channel = channel;
    const cancel = () => this.cancelled(call);
    if (signal.aborted) cancel();
    signal.addEventListener('abort', cancel, { once: true });
    let event: HeldEvent;
    try {
      event = await call.next();
    } finally {
      signal.removeEventListener('abort', cancel);
      call.owner.channel = undefined;
    }
    if (event === 'settled') {
      this.holds.forget(call);
      return call.result();
    }
    call.round += 1;
    const requestState = this.seal.sealHeld(binding, { id: call.id, round: call.round, replica: this.holds.replica }, this.holds.holdMs);
    this.holds.park(call, () => {
      this.logger.warn(
        { ...caller.correlation, userId: binding.userId, target: `${target.kind}:${target.id}`, holdMs: this.holds.holdMs },
        'Released a held call: the agent did not come back with its answers in time',
      );
      call.release(
        new RelayExpiredError(
          `The agent did not answer within ${this.holds.holdMs} ms (MCP_RELAY_HOLD_TIMEOUT_MS); the gateway released the call`,
        ),
      );
    });
    return { resultType: 'input_required', inputRequests: call.pending(), requestState } as unknown as InputRequiredResult;
  }

  /** Progress to the request `channel()` names, under its own token (dropped when there is none). */
  private progressTo(channel: () => RoundChannel | undefined): ProgressSink {
    return (progress, total, message) => {
      const current = channel();
      if (current?.progressToken === undefined) return;
      current
        .notify({ method: 'notifications/progress', params: { progressToken: current.progressToken, progress, total, message } })
        .catch((error: unknown) => this.logger.debug({ err: error }, 'Progress notification not delivered'));
    };
  }

  /** The agent cancelled its request while a round of the call ran: the call is released (cancelled upstream). */
  private cancelled(call: HeldCall<unknown>): void {
    this.holds.forget(call);
    call.release(new RelayExpiredError('The agent cancelled its request; the gateway released the call'));
  }

  /** The relay of one request; with `held` (a 2026-07-28 agent), the upstream's in-call requests wait there for the agent's retry. */
  private relayOf(
    server: Server,
    caller: McpCaller,
    target: RelayTarget,
    ctx: ServerContext,
    sessionLevel: LoggingLevel | null | undefined,
    binding: RequestStateBinding,
    requestState: string | undefined,
    held?: HeldCall<unknown, Owner>,
  ): CallRelay {
    const envelope = (ctx.mcpReq as { envelope?: Record<string, unknown> }).envelope;
    const modern = envelope !== undefined;
    // 2026-07-28: the request's own envelope; 2025 era: what the agent declared at initialize.
    const capabilities = relayCapabilitiesOf(modern ? envelope[CLIENT_CAPABILITIES_META_KEY] : server.getClientCapabilities());
    const requested = modern ? envelope[LOG_LEVEL_META_KEY] : sessionLevel;
    const logLevel = isLogLevel(requested) ? requested : undefined;
    const inputResponses = (ctx.mcpReq as { inputResponses?: Record<string, unknown> }).inputResponses;
    let pending: InputRequiredResult | undefined;
    const audit = (request: RelayedRequest, outcome: RelayOutcome) => this.audit(caller, target, modern, request, outcome);
    const relay: ClientRequestRelay = {
      // A held call's: what the agent declared in its latest round.
      get capabilities() {
        return held ? held.capabilities : capabilities;
      },
      ...(logLevel
        ? {
            logLevel,
            log: (params) => {
              // A held call's: on the request of the round running now.
              const channel = held ? held.owner.channel : channelOf(ctx);
              channel
                ?.notify({ method: 'notifications/message', params })
                .catch((error: unknown) => this.logger.debug({ err: error }, 'Relayed log message not delivered'));
            },
          }
        : {}),
      ...(modern
        ? held
          ? { send: (request: RelayedRequest, signal: AbortSignal) => held.ask(request, signal) }
          : {}
        : {
            notify: (notification) => {
              server
                .notification(notification)
                .catch((error: unknown) => this.logger.debug({ err: error }, `${notification.method} not delivered`));
            },
            send: (request: RelayedRequest, signal: AbortSignal) =>
              ctx.mcpReq.send(request as { method: RelayedRequest['method']; params?: Record<string, unknown> }, {
                signal,
                timeout: RELAYED_REQUEST_TIMEOUT_MS,
                resetTimeoutOnProgress: true,
              }) as Promise<Record<string, unknown>>,
          }),
      ...(inputResponses && Object.keys(inputResponses).length > 0 ? { inputResponses } : {}),
      ...(requestState !== undefined ? { requestState } : {}),
      inputRequired: (result: InputRequired) => {
        pending = {
          resultType: 'input_required',
          ...(result.inputRequests ? { inputRequests: result.inputRequests } : {}),
          requestState: this.seal.seal(binding, result.requestState),
        } as InputRequiredResult;
      },
      audit,
    };
    return {
      relay,
      inputRequired: () => {
        if (!pending) return undefined;
        // What the upstream asks for leaves the gateway now: audited before the agent sees it.
        for (const request of Object.values(pending.inputRequests ?? {})) void audit(request as RelayedRequest, { status: 'asked' });
        return pending;
      },
    };
  }

  private openState(
    binding: RequestStateBinding,
    raw: unknown,
    caller: McpCaller,
  ): { upstreamState?: string; held?: HeldCallRef } | undefined {
    if (raw === undefined) return undefined;
    try {
      if (typeof raw !== 'string') throw new Error('not a string');
      // A round whose upstream sent no state of its own still had ours: the retry then carries none upstream.
      return this.seal.open(binding, raw);
    } catch (error) {
      this.logger.warn(
        {
          ...caller.correlation,
          userId: binding.userId,
          tool: binding.toolId,
          reason: error instanceof Error ? error.message : String(error),
        },
        'Refused a retry whose requestState the gateway did not issue (or issued to another user, tool, prompt or resource, or that expired)',
      );
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Invalid or expired requestState', { reason: 'invalid_request_state' });
    }
  }

  private async audit(
    caller: McpCaller,
    target: RelayTarget,
    modern: boolean,
    request: RelayedRequest,
    outcome: RelayOutcome,
  ): Promise<void> {
    const refused = outcome.status !== 'answered' && outcome.status !== 'asked';
    const entry = auditEvent(AuditAction.MCP_CLIENT_REQUEST_RELAYED, caller, {
      resource: `${target.kind}:${target.id}`,
      result: refused ? 'failure' : 'success',
      details: {
        method: request.method,
        ...(target.upstream !== undefined ? { upstream: target.upstream } : {}),
        era: modern ? '2026-07-28' : '2025',
        ...asked(request),
        ...outcome,
      },
      metadata: { sessionId: caller.principal.sessionId || null, contextId: caller.context?.id ?? null },
    });
    try {
      await this.audits.recordStandalone(entry);
    } catch (error) {
      this.logger.error(
        { ...caller.correlation, err: error, target: `${target.kind}:${target.id}`, method: request.method },
        'Could not audit a relayed client request',
      );
    }
  }
}

/** What a request asked, for the audit trail: an elicitation's mode, message, URL and field names; a sampling request's size. */
function asked(request: RelayedRequest): Record<string, unknown> {
  const params = request.params ?? {};
  switch (request.method) {
    case 'elicitation/create': {
      const schema = params.requestedSchema as { properties?: Record<string, unknown> } | undefined;
      return {
        mode: params.mode === 'url' ? 'url' : 'form',
        ...(typeof params.message === 'string' ? { message: params.message.slice(0, MAX_AUDITED_TEXT) } : {}),
        ...(typeof params.url === 'string' ? { url: params.url.slice(0, MAX_AUDITED_TEXT) } : {}),
        ...(schema?.properties ? { fields: Object.keys(schema.properties) } : {}),
      };
    }
    case 'sampling/createMessage':
      return {
        messages: Array.isArray(params.messages) ? params.messages.length : 0,
        ...(typeof params.maxTokens === 'number' ? { maxTokens: params.maxTokens } : {}),
      };
    default:
      return {};
  }
}

/** A tool's binding is its id as before; prompts and resources are bound by kind and name. */
function bindingOf(caller: McpCaller, target: RelayTarget): RequestStateBinding {
  const toolId = target.kind === 'tool' ? target.id : `${target.kind}:${target.id}`;
  return { userId: caller.principal.userId, toolId, upstream: target.upstream ?? '' };
}

function sameBinding(a: RequestStateBinding, b: RequestStateBinding): boolean {
  return a.userId === b.userId && a.toolId === b.toolId && a.upstream === b.upstream;
}
