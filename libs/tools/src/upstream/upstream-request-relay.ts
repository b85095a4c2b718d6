import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { CLIENT_CAPABILITIES_META_KEY, Client, LOG_LEVEL_META_KEY, ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/client';
import type { ClientCapabilities, LoggingMessageNotificationParams } from '@modelcontextprotocol/client';
import {
  ClientRequestRelay,
  InputRequired,
  logLevelPasses,
  missingCapability,
  RelayCapabilities,
  RelayedMethod,
  RelayedRequest,
  RelayExpiredError,
} from '../provider/client-request-relay';
import { ToolError } from '../provider/tool-error';
import { takeCallMark } from './call-streams';

/**
 * What the gateway's client declares to every upstream: everything it can relay. Whether a given
 * request is relayed is decided per call, by what the calling agent declared (the upstream's
 * request is refused with -32601, as by a client without the capability, when it did not).
 */
export const RELAY_CLIENT_CAPABILITIES: ClientCapabilities = {
  sampling: { tools: {} },
  elicitation: { form: {}, url: {} },
  // listChanged: an agent's notifications/roots/list_changed is passed on (UpstreamFeatureService.rootsChanged).
  roots: { listChanged: true },
};

/** A failure code of upstream calls: the upstream asked for client input (the agent gets the InputRequiredResult instead). */
export const INPUT_REQUIRED = 'INPUT_REQUIRED';

/** The failure a provider throws after handing an InputRequiredResult to the relay: the gateway answers with that result. */
export function inputRequiredError(upstream: string): ToolError {
  return new ToolError(INPUT_REQUIRED, `Upstream ${upstream} needs input from the client before it can answer`);
}

/** A call in flight on a connection: its relay (null for a caller that cannot be asked: REST) and its mark (call-streams.ts). */
interface InFlight {
  relay: ClientRequestRelay | null;
  mark: string;
}

/**
 * One upstream connection's server→client requests (2025 era: sampling/createMessage,
 * elicitation/create, roots/list arriving while a call is in flight), relayed to the agent that
 * made the call. The JSON-RPC of the 2025 era does not say which call a request belongs to; over
 * Streamable HTTP the stream it came on does, and the transport marks it (call-streams.ts), so it
 * goes to that call's agent however many calls are in flight. Unmarked (stdio), a request is
 * relayed only when exactly one call is in flight on the connection: otherwise it could reach the
 * wrong agent, and it is refused (the upstream's tool sees an error).
 */
export class UpstreamRequestRelay {
  /** Calls in flight on this connection. */
  private readonly inFlight = new Set<InFlight>();
  /** URL elicitations relayed and accepted, by elicitationId: whose agent hears of their completion (oldest dropped first). */
  private readonly elicitations = new Map<string, ClientRequestRelay>();

  private readonly logger = new Logger(UpstreamRequestRelay.name);

  constructor(private readonly upstream: string) {}

  /**
   * Registers the three request handlers on a new client (which declares RELAY_CLIENT_CAPABILITIES),
   * and its log messages: on 2026-07-28 an upstream logs only for a request that asked (its `_meta`
   * log level), so a message goes to the agent whose request is in flight, and like a relayed
   * request only when exactly one such request is (the stream it came on is not visible through
   * the SDK); else it is dropped, never sent to another agent. 2025-era messages concern every
   * agent that set a level: `broadcast` gets them.
   */
  install(client: Client, broadcast: (params: LoggingMessageNotificationParams) => void): void {
    for (const method of ['sampling/createMessage', 'elicitation/create', 'roots/list'] as const) {
      client.setRequestHandler(method, (request, ctx) =>
        this.relay({ method, params: request.params as Record<string, unknown> | undefined }, ctx.mcpReq.signal),
      );
    }
    client.setNotificationHandler('notifications/elicitation/complete', (notification) => {
      takeCallMark(notification.params);
      const id = notification.params.elicitationId;
      const relay = this.elicitations.get(id);
      this.elicitations.delete(id);
      if (relay?.notify) relay.notify({ method: 'notifications/elicitation/complete', params: { elicitationId: id } });
      else
        this.logger.debug(
          { upstream: this.upstream },
          'notifications/elicitation/complete of an elicitation the gateway did not relay: dropped',
        );
    });
    client.setNotificationHandler('notifications/message', (notification) => {
      if (client.getProtocolEra() !== 'modern') {
        takeCallMark(notification.params);
        return broadcast(notification.params);
      }
      this.routeLog(notification.params);
    });
  }

  private routeLog(params: LoggingMessageNotificationParams): void {
    const mark = takeCallMark(params);
    const asking = [...this.inFlight].filter(
      (call) => call.relay?.log && call.relay.logLevel && (mark === undefined || call.mark === mark),
    );
    const relay = asking.length === 1 ? asking[0].relay : null;
    if (!relay?.log || !relay.logLevel) {
      this.logger.debug(
        { upstream: this.upstream, requests: asking.length },
        'Upstream log message dropped: no single request asked for it',
      );
      return;
    }
    if (logLevelPasses(params.level, relay.logLevel)) relay.log(params);
  }

  /** Marks a call in flight until `leave` is called; `mark` is what its request carries for the transport to mark its stream with. */
  enter(relay: ClientRequestRelay | undefined): { leave: () => void; mark: string } {
    const entry: InFlight = { relay: relay ?? null, mark: randomUUID() };
    this.inFlight.add(entry);
    return { leave: () => this.inFlight.delete(entry), mark: entry.mark };
  }

  // The SDK's handler types want the exact result type of each method; the agent's answer is relayed as it came.
  private async relay(request: RelayedRequest, signal: AbortSignal): Promise<any> {
    const mark = takeCallMark(request.params as { _meta?: Record<string, unknown> } | undefined);
    const calls = [...this.inFlight].filter((call) => mark === undefined || call.mark === mark);
    if (mark !== undefined && calls.length === 0) {
      throw new ProtocolError(ProtocolErrorCode.InternalError, `The call ${request.method} belongs to is no longer in flight`);
    }
    if (calls.length !== 1) {
      throw new ProtocolError(
        ProtocolErrorCode.InternalError,
        calls.length === 0
          ? `The gateway has no call in flight to relay ${request.method} to`
          : `The gateway cannot tell which of ${calls.length} calls in flight ${request.method} belongs to; it relays such requests only while one call is in flight`,
      );
    }
    const relay = calls[0].relay;
    if (!relay) throw refusal(request.method, 'the caller is not an MCP agent (REST) and cannot be asked');
    const missing = missingCapability(request, relay.capabilities);
    if (missing) {
      await relay.audit(request, { status: 'refused', reason: `capability ${missing} not declared` });
      throw refusal(request.method, `the calling agent did not declare the ${missing} capability`);
    }
    if (!relay.send) {
      // Every MCP agent's relay can send (a 2026-07-28 agent's holds the call open for its retry); kept for a relay that cannot.
      await relay.audit(request, { status: 'refused', reason: 'the agent cannot be asked during this call' });
      throw refusal(request.method, 'the calling agent cannot be asked during this call');
    }
    let answer: Record<string, unknown>;
    try {
      answer = await relay.send(request, signal);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      await relay.audit(request, { status: error instanceof RelayExpiredError ? 'expired' : 'failed', reason });
      throw error;
    }
    await relay.audit(request, { status: 'answered', ...(typeof answer.action === 'string' ? { action: answer.action } : {}) });
    const elicitationId = request.params?.elicitationId;
    if (
      request.method === 'elicitation/create' &&
      request.params?.mode === 'url' &&
      typeof elicitationId === 'string' &&
      answer.action === 'accept'
    ) {
      // Its completion, when the upstream announces it, goes to this agent only.
      if (this.elicitations.size >= MAX_PENDING_ELICITATIONS) this.elicitations.delete(this.elicitations.keys().next().value!);
      this.elicitations.set(elicitationId, relay);
    }
    return answer;
  }
}

/** URL elicitations awaiting their completion notice per upstream connection, at most. */
const MAX_PENDING_ELICITATIONS = 1_000;

/** -32601, what a client without the capability answers (the 2025 era has no more specific error). */
function refusal(method: RelayedMethod, why: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.MethodNotFound, `The gateway did not relay ${method}: ${why}`);
}

/** The InputRequiredResult fields of a tools/call answer, or null when it is a final result. */
export function inputRequiredOf(result: unknown): InputRequired | null {
  if (typeof result !== 'object' || result === null || (result as { resultType?: unknown }).resultType !== 'input_required') return null;
  const { inputRequests, requestState } = result as { inputRequests?: unknown; requestState?: unknown };
  const out: InputRequired = {};
  if (inputRequests && typeof inputRequests === 'object') out.inputRequests = inputRequests as Record<string, RelayedRequest>;
  if (typeof requestState === 'string') out.requestState = requestState;
  return out;
}

/** The `_meta` client-capabilities envelope of a 2026-07-28 call: the calling agent's relayable capabilities, not the gateway's. */
export function capabilitiesEnvelope(capabilities: RelayCapabilities | undefined): ClientCapabilities {
  return { ...(capabilities ?? {}) } as ClientCapabilities;
}

/**
 * What a 2026-07-28 request to an upstream carries for the agent behind it: the agent's
 * capabilities (not the gateway's), the log level it asked for (none: the upstream logs nothing),
 * and on a retry its answers and the upstream's own request state.
 */
export function agentRequestParams(relay: ClientRequestRelay | undefined): Record<string, unknown> {
  return {
    _meta: {
      [CLIENT_CAPABILITIES_META_KEY]: capabilitiesEnvelope(relay?.capabilities),
      ...(relay?.logLevel ? { [LOG_LEVEL_META_KEY]: relay.logLevel } : {}),
    },
    ...(relay?.inputResponses ? { inputResponses: relay.inputResponses } : {}),
    ...(relay?.requestState !== undefined ? { requestState: relay.requestState } : {}),
  };
}
