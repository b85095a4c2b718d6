import type { LoggingLevel, LoggingMessageNotificationParams } from '@modelcontextprotocol/client';

/**
 * The requests an MCP server may make of its client while it answers a call (server→client
 * requests): the three a gateway relays to the agent that made the call.
 */
export type RelayedMethod = 'sampling/createMessage' | 'elicitation/create' | 'roots/list';

/** One such request, as the upstream made it (2025 era: a JSON-RPC request; 2026-07-28: an embedded input request). */
export interface RelayedRequest {
  method: RelayedMethod;
  params?: Record<string, unknown>;
}

/** The capabilities of the calling agent that matter to relaying, as the agent declared them. */
export interface RelayCapabilities {
  sampling?: Record<string, unknown>;
  elicitation?: Record<string, unknown>;
  roots?: Record<string, unknown>;
}

/** A 2026-07-28 `InputRequiredResult`: what the upstream needs from the client before it can answer. */
export interface InputRequired {
  inputRequests?: Record<string, RelayedRequest>;
  requestState?: string;
}

/**
 * How a tool reaches the agent that called it (MCP only: REST callers have no such channel and
 * get none). Built by the MCP gateway per `tools/call`; a provider that does not relay ignores it.
 */
export interface ClientRequestRelay {
  /** What the agent declared; a request it did not declare is refused, never sent. */
  readonly capabilities: RelayCapabilities;
  /**
   * Sends a request to the agent and resolves with the agent's answer. 2025-era agent: a request
   * related to its call (on its session's stream). 2026-07-28 agent: the gateway holds the call,
   * answers the agent with an InputRequiredResult carrying the request, and resolves with what the
   * agent's retry brings (rejects with RelayExpiredError when it never comes). Absent when the
   * agent cannot be asked.
   */
  readonly send?: (request: RelayedRequest, signal: AbortSignal) => Promise<Record<string, unknown>>;
  /** 2026-07-28 retry: the agent's answers to the previous round's input requests. */
  readonly inputResponses?: Record<string, unknown>;
  /** 2026-07-28 retry: the upstream's own requestState of the previous round, verified and unwrapped by the gateway. */
  readonly requestState?: string;
  /** The upstream needs input: the gateway returns this to the agent (its requestState sealed) instead of a result. */
  inputRequired(result: InputRequired): void;
  /** Records that a request was (or was not) relayed, and of whom (the audit trail). */
  audit(request: RelayedRequest, outcome: RelayOutcome): Promise<void>;
  /**
   * The least severe log level the agent wants messages of while this request runs (2026-07-28:
   * its request's `_meta` log level; 2025 era: what it set with `logging/setLevel`). Absent: no log
   * messages are asked for.
   */
  readonly logLevel?: LoggingLevel;
  /** Passes a log message the upstream sent about this request to the agent (on the request's own stream). */
  log?(params: LoggingMessageNotificationParams): void;
  /**
   * 2025 era: sends the agent a notification on its session, also after the call has ended (an
   * upstream's `notifications/elicitation/complete` for a URL elicitation the agent was sent).
   */
  notify?(notification: { method: 'notifications/elicitation/complete'; params: { elicitationId: string } }): void;
}

/** The spec's log levels, least severe first. */
const LOG_LEVELS: readonly LoggingLevel[] = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

/** Whether a message of `level` passes a `minimum` an agent set (unknown levels pass nothing). */
export function logLevelPasses(level: LoggingLevel, minimum: LoggingLevel): boolean {
  const at = LOG_LEVELS.indexOf(level);
  return at >= 0 && at >= LOG_LEVELS.indexOf(minimum);
}

/** Whether a value is one of the spec's log levels. */
export function isLogLevel(value: unknown): value is LoggingLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}

/** How relaying one request ended: `refused` when the agent did not declare the capability or cannot be asked. */
export type RelayOutcome =
  | { status: 'answered'; action?: string }
  /** 2026-07-28: sent to the agent inside an InputRequiredResult (its answer comes with the retry). */
  | { status: 'asked' }
  /** `expired`: a held call's agent did not come back with its answer in time (RelayExpiredError). */
  | { status: 'refused' | 'failed' | 'expired'; reason: string };

/** A request of a held call the agent never answered: the call was released when its hold ran out. */
export class RelayExpiredError extends Error {
  override readonly name = 'RelayExpiredError';
}

/** The capability a request needs, and whether `capabilities` covers it (URL-mode elicitation needs `elicitation.url`). */
export function missingCapability(request: RelayedRequest, capabilities: RelayCapabilities): string | null {
  switch (request.method) {
    case 'sampling/createMessage': {
      if (!capabilities.sampling) return 'sampling';
      const wantsTools = request.params?.tools !== undefined || request.params?.toolChoice !== undefined;
      return wantsTools && !capabilities.sampling.tools ? 'sampling.tools' : null;
    }
    case 'roots/list':
      return capabilities.roots ? null : 'roots';
    case 'elicitation/create': {
      const elicitation = capabilities.elicitation;
      if (!elicitation) return 'elicitation';
      // An empty elicitation capability means form mode (the spec's backwards compatibility); URL mode only when declared.
      if (request.params?.mode === 'url') return elicitation.url ? null : 'elicitation.url';
      const declaresModes = elicitation.form !== undefined || elicitation.url !== undefined;
      return !declaresModes || elicitation.form ? null : 'elicitation.form';
    }
    default:
      return `unknown request ${String((request as { method: unknown }).method)}`;
  }
}

/** The relayable part of a client's capabilities (sampling, elicitation, roots), the rest left out. */
export function relayCapabilitiesOf(capabilities: unknown): RelayCapabilities {
  const declared = (typeof capabilities === 'object' && capabilities !== null ? capabilities : {}) as Record<string, unknown>;
  const out: RelayCapabilities = {};
  for (const key of ['sampling', 'elicitation', 'roots'] as const) {
    const value = declared[key];
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) out[key] = value as Record<string, unknown>;
  }
  return out;
}
