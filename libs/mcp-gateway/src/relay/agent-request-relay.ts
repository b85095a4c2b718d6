import { Injectable, Logger } from '@nestjs/common';
import { CLIENT_CAPABILITIES_META_KEY, LOG_LEVEL_META_KEY, ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import type { InputRequiredResult, LoggingLevel, Server, ServerContext } from '@modelcontextprotocol/server';
import { AuditAction, auditEvent, AuditService } from '@app/audit';
import { isLogLevel, relayCapabilitiesOf } from '@app/tools';
import type { CatalogTool, ClientRequestRelay, InputRequired, RelayedRequest, RelayOutcome } from '@app/tools';
import type { McpCaller } from '../tools/mcp-caller';
import { RequestStateBinding, RequestStateSeal } from './request-state.seal';

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

/** One request's relay (tools/call, prompts/get, resources/read), and the InputRequiredResult to answer with when the upstream asked for input. */
export interface CallRelay {
  relay: ClientRequestRelay;
  /** Set when the upstream answered input_required: the agent gets this (its requestState sealed) instead of a result. */
  inputRequired(): InputRequiredResult | undefined;
}

/**
 * Connects a federated tool's server→client requests to the agent that called it:
 * - 2025 era (a session, over HTTP or WebSocket): the upstream's sampling, elicitation or roots
 *   request goes to the agent as a request related to its `tools/call` (on that call's stream),
 *   and the agent's answer goes back to the upstream;
 * - 2026-07-28: the upstream's InputRequiredResult goes to the agent, its requestState sealed
 *   (RequestStateSeal: bound to user, tool and upstream); the agent's retry carries its answers,
 *   which go to the upstream with the upstream's own state. A 2025-era agent gets the same
 *   round trip as real requests on its session, from the SDK's input-required shim.
 * Only what the agent declared is relayed (the SDK refuses the rest with the spec's errors:
 * -32021 on 2026-07-28; the upstream's request gets -32601 on the 2025 era). Every request
 * relayed, or refused, is audited: its method, what it asked (an elicitation's message or URL,
 * never an answer), of whom.
 */
@Injectable()
export class AgentRequestRelays {
  private readonly logger = new Logger(AgentRequestRelays.name);

  constructor(
    private readonly seal: RequestStateSeal,
    private readonly audits: AuditService,
  ) {}

  /** The relay of one `tools/call` of `tool` by `caller` (see forRequest). */
  forCall(server: Server, caller: McpCaller, tool: CatalogTool, ctx: ServerContext, sessionLevel?: LoggingLevel | null): CallRelay {
    return this.forRequest(server, caller, { kind: 'tool', id: tool.id, upstream: tool.provider }, ctx, sessionLevel);
  }

  /**
   * The relay of one request of `caller` to `target`. Its log level is the request's own
   * (2026-07-28 `_meta`) or `sessionLevel` (what a 2025-era agent set with logging/setLevel); the
   * upstream's log messages about the request go to the agent on the request's stream. Throws
   * -32602 (the SDK's own answer to a state it cannot verify) when the retry's requestState was
   * not sealed by this gateway for this user, target and upstream, or has expired.
   */
  forRequest(server: Server, caller: McpCaller, target: RelayTarget, ctx: ServerContext, sessionLevel?: LoggingLevel | null): CallRelay {
    const envelope = (ctx.mcpReq as { envelope?: Record<string, unknown> }).envelope;
    const modern = envelope !== undefined;
    // 2026-07-28: the request's own envelope; 2025 era: what the agent declared at initialize.
    const capabilities = relayCapabilitiesOf(modern ? envelope[CLIENT_CAPABILITIES_META_KEY] : server.getClientCapabilities());
    const requested = modern ? envelope[LOG_LEVEL_META_KEY] : sessionLevel;
    const logLevel = isLogLevel(requested) ? requested : undefined;
    // A tool's binding is its id as before; prompts and resources are bound by kind and name.
    const binding: RequestStateBinding =
      target.kind === 'tool'
        ? { userId: caller.principal.userId, toolId: target.id, upstream: target.upstream ?? '' }
        : { userId: caller.principal.userId, toolId: `${target.kind}:${target.id}`, upstream: target.upstream ?? '' };
    const requestState = this.openState(binding, ctx.mcpReq.requestState(), caller);
    const inputResponses = (ctx.mcpReq as { inputResponses?: Record<string, unknown> }).inputResponses;
    let pending: InputRequiredResult | undefined;
    const audit = (request: RelayedRequest, outcome: RelayOutcome) => this.audit(caller, target, modern, request, outcome);
    const relay: ClientRequestRelay = {
      capabilities,
      ...(logLevel
        ? {
            logLevel,
            log: (params) => {
              ctx.mcpReq
                .notify({ method: 'notifications/message', params })
                .catch((error: unknown) => this.logger.debug({ err: error }, 'Relayed log message not delivered'));
            },
          }
        : {}),
      ...(modern
        ? {}
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

  private openState(binding: RequestStateBinding, raw: unknown, caller: McpCaller): string | undefined {
    if (raw === undefined) return undefined;
    try {
      if (typeof raw !== 'string') throw new Error('not a string');
      // A round whose upstream sent no state of its own still had ours: the retry then carries none upstream.
      return this.seal.open(binding, raw).upstreamState;
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
    const refused = outcome.status === 'refused' || outcome.status === 'failed';
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
