import { Inject, Injectable, Logger } from '@nestjs/common';
import { CallToolRequest, CallToolResult, ProtocolError, ProtocolErrorCode, Server, ServerContext } from '@modelcontextprotocol/server';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/server/validators/ajv';
import { APP_CONFIG, AppConfig, AppException } from '@app/core';
import { SessionActivityService } from '@app/sessions';
import { BUILTIN_PROVIDER, ToolExecutionService } from '@app/tools';
import type { ClientRequestRelay } from '@app/tools';
import { answerJsonDirectly } from '../http/json-answer';
import { failedResult, refusedResult } from '../errors/mcp-errors';
import { McpFederatedFeatures } from '../features/mcp-federated-features';
import { AgentRequestRelays, ProgressSink } from '../relay/agent-request-relay';
import { completedResult } from './mcp-call-result';
import type { McpCaller } from './mcp-caller';
import { McpToolIndex, ToolPage } from './mcp-tool-index';
import { countMessages } from './message-counter';
import type { ToolListSplice } from './tool-list-splice';
import { TracedServer } from './traced-server';

/** Where a server's handlers learn who is calling: per request (HTTP) or per connection (WebSocket). */
export type CallerSource = (ctx: ServerContext) => McpCaller | Promise<McpCaller>;

/** The caller an HTTP request carries to the SDK (and back to our handlers) in `authInfo.extra`. */
export const MCP_CALLER_KEY = 'mcpCaller';

/** Callers of HTTP endpoints: the one the request was authenticated as. */
export const callerOfRequest: CallerSource = (ctx) => {
  const caller = ctx.http?.authInfo?.extra?.[MCP_CALLER_KEY] as McpCaller | undefined;
  if (!caller) throw new ProtocolError(ProtocolErrorCode.InternalError, 'Request has no authenticated caller');
  return caller;
};

/**
 * Builds the low-level SDK `Server` that answers one HTTP request (2026-07-28), one 2025 session
 * or one WebSocket: `tools/list` from the caller's cached list, `tools/call` through the same
 * execution pipeline as REST (identity, permissions, rate limit, validation, audit, session
 * counters), with progress notifications and cancellation. Construction is cheap by design: the
 * SDK wants one instance per request, so everything expensive is prepared elsewhere.
 */
@Injectable()
export class McpServerBuilder {
  private readonly logger = new Logger(McpServerBuilder.name);
  private readonly info: { name: string; title: string; version: string };
  /** Shared: the SDK only uses it for elicitation, and a fresh Ajv per request would dominate its cost. */
  private readonly jsonSchemaValidator = new AjvJsonSchemaValidator();

  constructor(
    private readonly index: McpToolIndex,
    private readonly executions: ToolExecutionService,
    private readonly activity: SessionActivityService,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly federated: McpFederatedFeatures,
    private readonly relays: AgentRequestRelays,
  ) {
    this.info = { name: 'secure-mcp-server', title: 'Secure MCP Server', version: config.version };
  }

  /** With a `splice` (stateless HTTP), `tools/list` answers carry the index's cached JSON through it. */
  build(callerOf: CallerSource, countIn: () => string | null, splice?: ToolListSplice): Server {
    const server = new TracedServer(this.info, {
      // Prompts, resources, completions and logging when an upstream offers them (see McpFederatedFeatures).
      capabilities: { ...this.federated.capabilities(), tools: { listChanged: true } },
      jsonSchemaValidator: this.jsonSchemaValidator,
    });
    server.setRequestHandler('tools/list', async (request, ctx): Promise<ToolPage> => {
      const caller = await callerOf(ctx);
      if (!splice) return this.index.page(caller, request.params?.cursor);
      const { toolsJson, nextCursor } = this.index.serializedPage(caller, request.params?.cursor);
      const tools = splice.hold(toolsJson);
      return nextCursor === undefined ? { tools } : { tools, nextCursor };
    });
    server.setRequestHandler('tools/call', async (request, ctx) => {
      const caller = await callerOf(ctx);
      this.federated.noteCaller(server, caller);
      return this.call(caller, request, ctx, server);
    });
    this.federated.register(server, callerOf);
    // Before the counter's wrapper, so an answer settled without a web Response is still counted as sent.
    answerJsonDirectly(server);
    countMessages(server, this.activity, countIn);
    return server;
  }

  private async call(caller: McpCaller, request: CallToolRequest, ctx: ServerContext, server: Server): Promise<CallToolResult> {
    const name = request.params.name;
    const tool = this.index.find(caller, name);
    if (!tool) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${name}`);
    // Sampling, elicitation and roots requests of the tool reach this agent (and a retry's answers the tool);
    // a 2026-07-28 agent's call of a 2025-era upstream that asks is held open across its rounds.
    const target = { kind: 'tool' as const, id: tool.id, upstream: tool.provider };
    const work = async (relay: ClientRequestRelay | undefined, signal: AbortSignal, reportProgress: ProgressSink | undefined) => {
      try {
        // The caller is the scope its edge resolved (principal, context): the pipeline looks nothing up again.
        const { execution } = await this.executions.execute(
          caller,
          tool.id,
          { parameters: request.params.arguments ?? {} },
          { ipAddress: caller.ipAddress, userAgent: caller.userAgent, reportProgress, signal, relay },
        );
        // A failed run is counted (tool_executions, errors) by the pipeline itself.
        return execution.status === 'completed'
          ? completedResult(tool, execution.result)
          : failedResult(tool, execution.error, execution.result);
      } catch (error) {
        if (!(error instanceof AppException)) throw error;
        if (error.getStatus() === 404) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool: ${name}`);
        const sessionId = caller.principal.sessionId;
        if (sessionId) this.activity.count(sessionId, { errors: 1 });
        return refusedResult(tool, error);
      }
    };
    // A built-in tool asks the agent nothing: no relay (a retry's requestState still goes through the relay's checks).
    const result =
      tool.provider === BUILTIN_PROVIDER && ctx.mcpReq.requestState() === undefined
        ? await this.relays.runLocal(ctx, (signal, progress) => work(undefined, signal, progress))
        : await this.relays.run(server, caller, target, ctx, this.federated.logLevelOf(server), work);
    // The upstream needs the agent's input first (2026-07-28 round trip): its InputRequiredResult, not a result.
    return result as CallToolResult;
  }
}
