import { Logger } from '@nestjs/common';
import { context, trace } from '@opentelemetry/api';
import { JSONRPCRequest, Result, Server, ServerContext } from '@modelcontextprotocol/server';
import { safeErrorMessage } from '@app/core';
import { Attributes, contextFromMeta, inSpan, metaHasTraceContext, SpanKind, tracing } from '@app/telemetry';
import { handlerErrorOf } from '../errors/mcp-errors';

type Handler = (request: JSONRPCRequest, ctx: ServerContext) => Promise<Result>;
type JsonRpcRequest = JSONRPCRequest;

/** The span name's target (semantic conventions for MCP): a tool's or prompt's name; nothing else. */
const TARGET_OF: Record<string, string> = { 'tools/call': 'gen_ai.tool.name', 'prompts/get': 'gen_ai.prompt.name' };

/**
 * The SDK `Server` with one SERVER span per MCP request it handles (every era and transport: the
 * same builder serves 2026-07-28 HTTP, 2025 sessions and WebSocket connections), named
 * `{mcp.method.name} {target}` with the MCP semantic-convention attributes. The parent is the
 * trace context the request carries in `params._meta` (SEP-414) when it has one, with a link to
 * the HTTP request's span; else the active context (the HTTP request's span). Argument values
 * and results never become attributes. With tracing off this is the plain `Server`.
 */
export class TracedServer extends Server {
  protected override _wrapHandler(method: string, handler: Handler): Handler {
    const checked =
      method === 'tools/call'
        ? answeringAsGiven(handler, (given) => super._wrapHandler(method, given))
        : super._wrapHandler(method, handler);
    const wrapped = answeringFaults(method, checked);
    if (!tracing.tracer) return wrapped;
    return (request, ctx) =>
      inSpan(spanNameOf(method, request), mcpSpanRequest(method, request, ctx), async (span) => {
        const result = await wrapped(request, ctx);
        if (span && method === 'tools/call' && (result as { isError?: unknown }).isError === true) {
          span.setAttribute('error.type', 'tool_error');
        }
        return result;
      });
  }

  /**
   * The base hands every response handler and in-flight request handler still waiting one new
   * ConnectionClosed error. An answered 2026-07-28 request's transport closes with nothing waiting,
   * so that error is never seen: it is made without a stack (capturing one was about 1% of a
   * tool call's CPU). Anything waiting, or SDK state this cannot read, gets the base as it is.
   */
  protected override _onclose(): void {
    if (!nothingWaits(this)) return super._onclose();
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super._onclose();
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

function nothingWaits(server: Server): boolean {
  const { _responseHandlers: responses, _requestHandlerAbortControllers: handlers } = server as unknown as {
    _responseHandlers?: unknown;
    _requestHandlerAbortControllers?: unknown;
  };
  return responses instanceof Map && handlers instanceof Map && responses.size === 0 && handlers.size === 0;
}

const logger = new Logger('McpServer');

/**
 * tools/call checked as the SDK's own wrapper checks it (the request, and the result against the
 * era's wire schema, refusing one that fails), but answered as the handler gave it: the check's
 * output is a copy rebuilt by the schema, without the fields it does not know inside content
 * blocks, and a federated result reaches the agent as the upstream sent it. A result the SDK
 * completes or answers differently (one without `content`, an input-required result) is answered
 * as the SDK makes it.
 */
function answeringAsGiven(handler: Handler, check: (handler: Handler) => Handler): Handler {
  const given = new WeakMap<JsonRpcRequest, Result>();
  const checked = check(async (request, ctx) => {
    const result = await handler(request, ctx);
    given.set(request, result);
    return result;
  });
  return async (request, ctx) => {
    const answer = await checked(request, ctx);
    const result = given.get(request);
    given.delete(request);
    return result !== undefined && Array.isArray((result as { content?: unknown }).content) && !('resultType' in result) ? result : answer;
  };
}

/**
 * The handler, with what it throws mapped for the agent (see handlerErrorOf): a fault of ours is
 * logged here with its request id, and the agent learns only that it happened (or, for the
 * database being away, to retry).
 */
function answeringFaults(method: string, handler: Handler): Handler {
  return async (request, ctx) => {
    try {
      return await handler(request, ctx);
    } catch (thrown) {
      const { error, fault } = handlerErrorOf(thrown);
      if (fault === 'internal') logger.error({ err: thrown, method, jsonrpcId: ctx.mcpReq.id }, 'Unhandled error in an MCP handler');
      else if (fault === 'unavailable') logger.warn({ method, reason: safeErrorMessage(thrown) }, 'Dependency unavailable');
      throw error;
    }
  };
}

function paramsOf(request: JsonRpcRequest): Record<string, unknown> | undefined {
  const params = (request as { params?: unknown }).params;
  return typeof params === 'object' && params !== null ? (params as Record<string, unknown>) : undefined;
}

function spanNameOf(method: string, request: JsonRpcRequest): string {
  const name = TARGET_OF[method] ? paramsOf(request)?.name : undefined;
  return typeof name === 'string' ? `${method} ${name}` : method;
}

function mcpSpanRequest(method: string, request: JsonRpcRequest, ctx: ServerContext) {
  const params = paramsOf(request);
  const meta = metaHasTraceContext(ctx.mcpReq._meta) ? ctx.mcpReq._meta : params?._meta;
  const active = context.active();
  const parent = contextFromMeta(meta, active);
  const httpSpan = parent !== active ? trace.getSpan(active) : undefined;
  const attributes: Attributes = { 'mcp.method.name': method, 'jsonrpc.request.id': String(ctx.mcpReq.id), 'network.transport': 'tcp' };
  if (ctx.sessionId) attributes['mcp.session.id'] = ctx.sessionId;
  const targetKey = TARGET_OF[method];
  if (targetKey && typeof params?.name === 'string') attributes[targetKey] = params.name;
  if (method === 'tools/call') attributes['gen_ai.operation.name'] = 'execute_tool';
  if (metaHasTraceContext(meta)) attributes['app.mcp.trace_context'] = '_meta';
  return { kind: SpanKind.SERVER, attributes, parent, links: httpSpan ? [{ context: httpSpan.spanContext() }] : undefined };
}
