import { ProtocolError, ProtocolErrorCode, type CallToolResult, type JSONRPCMessage } from '@modelcontextprotocol/server';
import type { OutgoingHttpHeaders } from 'node:http';
import { AppException, ErrorCode, isDatabaseUnavailable, type ErrorDetail, type JsonInputResult } from '@app/core';
import { isToolResult } from '@app/tools';
import type { CatalogTool, ExecutionError } from '@app/tools';
import { relayed } from '../tools/mcp-call-result';
import { advertisedOutputSchema } from '../tools/mcp-tool-index';

/**
 * The MCP error mapper: every refusal and failure the gateway answers itself goes through here, in
 * the shape its place in the protocol needs:
 * - before JSON-RPC dispatch (HTTP request, WebSocket upgrade, a WebSocket message refused by the
 *   rate limit): a JSON-RPC error `{ code, message, data }` with the HTTP status and headers
 *   (Retry-After, X-RateLimit-*, WWW-Authenticate) of the REST refusal, and `data` carrying the
 *   contract's code (`data.error`, e.g. RATE_LIMIT_EXCEEDED) and status, so an agent reads the same
 *   code whichever transport it uses;
 * - inside a request (a handler's refusal): a ProtocolError;
 * - a tool call the pipeline refused or that failed: a tool error result (`isError`), which the
 *   model sees (success rendering stays in mcp-call-result.ts).
 */

/** Error codes the gateway answers with outside the SDK (the SDK's own answers use the same shapes). */
export const JsonRpcCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  INVALID_PARAMS: -32602,
  /** Transport-level refusals (bad request, forbidden, rate limited, session problems), as the SDK's transports use it. */
  SERVER_ERROR: -32000,
  /** Authentication required or refused. */
  UNAUTHORIZED: -32001,
  /** An Mcp-Session-Id that is unknown or ended (as the SDK's sessionful transport answers it). */
  SESSION_NOT_FOUND: -32001,
} as const;

/** What `data` of an edge refusal carries: the contract's code and HTTP status (and details, if any). */
export interface RefusalData {
  status: number;
  error: string;
  details?: ErrorDetail[];
}

/** A refusal before JSON-RPC dispatch, in every form a transport needs it. */
export interface McpRefusal {
  status: number;
  code: number;
  message: string;
  headers: Record<string, string>;
  data?: RefusalData;
}

export interface JsonRpcRefusal {
  jsonrpc: '2.0';
  id: string | number | null;
  error: { code: number; message: string; data?: unknown };
}

/** A refusal with no contract code behind it (Host/Origin, media type, session problems). */
export function refusal(status: number, code: number, message: string, headers: Record<string, string> = {}): McpRefusal {
  return { status, code, message, headers };
}

/**
 * An error the edge (authentication, rate limit, scope) threw, as a refusal: the REST status,
 * headers and contract code; 401 is UNAUTHORIZED (-32001), everything else SERVER_ERROR. The
 * database or Redis being away is a 503 to retry. Null for anything else (a fault: log it, 500).
 */
export function refusalOf(error: unknown): McpRefusal | null {
  if (error instanceof AppException) {
    const status = error.getStatus();
    const details = error.details.length > 0 ? { details: error.details } : {};
    return {
      status,
      code: status === 401 ? JsonRpcCode.UNAUTHORIZED : JsonRpcCode.SERVER_ERROR,
      message: error.message,
      headers: { ...error.headers },
      data: { status, error: String(error.code), ...details },
    };
  }
  if (isDatabaseUnavailable(error)) return refusal(503, JsonRpcCode.SERVER_ERROR, 'Service Unavailable', { 'Retry-After': '5' });
  return null;
}

/** The JSON-RPC error body of a refusal (id null unless it answers one message). */
export function jsonRpcError(refused: McpRefusal, id: string | number | null = null): JsonRpcRefusal {
  const error =
    refused.data === undefined
      ? { code: refused.code, message: refused.message }
      : { code: refused.code, message: refused.message, data: refused.data };
  return { jsonrpc: '2.0', id, error };
}

/** A refusal answered over HTTP: the JSON-RPC error with the refusal's status and headers (`replacing` wins). */
export function refusalResponse(refused: McpRefusal, replacing: Record<string, string> = {}): Response {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const [name, value] of [...Object.entries(refused.headers), ...Object.entries(replacing)]) headers[name.toLowerCase()] = value;
  return new Response(JSON.stringify(jsonRpcError(refused)), { status: refused.status, headers });
}

/** A JSON-RPC error answered over HTTP (id null: it is about the request, not a message in it). */
export function jsonRpcErrorResponse(status: number, code: number, message: string, headers: Record<string, string> = {}): Response {
  return refusalResponse(refusal(status, code, message, headers));
}

/** A refused WebSocket upgrade as `ws`'s verifyClient answers it: status, the JSON-RPC body, headers. */
export function upgradeRefusal(refused: McpRefusal): { status: number; body: string; headers: OutgoingHttpHeaders } {
  return {
    status: refused.status,
    body: JSON.stringify(jsonRpcError(refused)),
    headers: { ...refused.headers, 'Content-Type': 'application/json' },
  };
}

/** The answer to a WebSocket message refused at the edge: an error to its id; a notification gets none. */
export function messageRefusal(message: JSONRPCMessage, refused: McpRefusal): JSONRPCMessage | null {
  const id = (message as { id?: unknown }).id;
  if (typeof id !== 'string' && typeof id !== 'number') return null;
  const data = { ...refused.data, ...(refused.headers['Retry-After'] ? { retryAfter: Number(refused.headers['Retry-After']) } : {}) };
  return { jsonrpc: '2.0', id, error: { code: refused.code, message: refused.message, data } } as JSONRPCMessage;
}

/** An edge refusal met inside a request handler (a WebSocket's scope re-checked per message). */
export function protocolErrorOf(error: AppException): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.InvalidRequest, error.message, { status: error.getStatus(), error: String(error.code) });
}

/**
 * What an error thrown out of a request handler becomes before the SDK answers it (the SDK would
 * send any error's own `message` to the agent: a driver's "Connection terminated unexpectedly",
 * a stack-bearing TypeError). A JSON-RPC error already (our ProtocolErrors, an upstream's error
 * relayed as sent) passes unchanged; an AppException is its refusal; the database being away is
 * the REST API's 503 (`data.retryAfter`); anything else is an internal error that names nothing.
 * `fault` says whether it is ours to log.
 */
export function handlerErrorOf(error: unknown): { error: unknown; fault: 'none' | 'unavailable' | 'internal' } {
  if (typeof error === 'object' && error !== null && Number.isSafeInteger((error as { code?: unknown }).code)) {
    return { error, fault: 'none' };
  }
  const refused = refusalOf(error);
  if (refused) {
    const retryAfter = refused.headers['Retry-After'];
    const data = { ...refused.data, ...(retryAfter ? { retryAfter: Number(retryAfter) } : {}) };
    if (error instanceof AppException) return { error: new ProtocolError(refused.code, refused.message, data), fault: 'none' };
    const unavailable = { ...data, status: 503, error: ErrorCode.SERVICE_UNAVAILABLE };
    return { error: new ProtocolError(refused.code, 'Database temporarily unavailable', unavailable), fault: 'unavailable' };
  }
  const data = { status: 500, error: ErrorCode.INTERNAL_ERROR };
  return { error: new ProtocolError(ProtocolErrorCode.InternalError, 'Internal server error', data), fault: 'internal' };
}

/** A frame that is not one JSON-RPC message. */
export function frameParseError(): JSONRPCMessage {
  return {
    jsonrpc: '2.0',
    id: null as unknown as string,
    error: { code: JsonRpcCode.PARSE_ERROR, message: 'Parse error: each frame must be one JSON-RPC message' },
  } as JSONRPCMessage;
}

/**
 * The answer to a message the input rules refused (see parseJsonInput), the same on HTTP and
 * WebSocket: not JSON is a parse error; too deep an invalid request; a NUL, lone surrogate or
 * `__proto__` anywhere is invalid params, answered to the request's id with the offending fields
 * (REST refuses the same bodies with a 400).
 */
export function jsonRpcInputRefusal(result: Exclude<JsonInputResult, { ok: true }>): JsonRpcRefusal {
  if (result.reason === 'syntax') return rpcError(null, JsonRpcCode.PARSE_ERROR, 'Parse error: the message is not valid JSON');
  if (result.reason !== 'content') {
    return rpcError(null, JsonRpcCode.INVALID_REQUEST, `Invalid Request: ${result.details[0]?.message ?? 'nested too deeply'}`, {
      details: result.details,
    });
  }
  return rpcError(requestIdOf(result.value), JsonRpcCode.INVALID_PARAMS, 'Invalid params: the message carries refused strings or keys', {
    details: result.details,
  });
}

/** The HTTP form: a request that has an id gets its error as its answer; anything else is a 400. */
export function jsonRpcInputRefusalResponse(result: Exclude<JsonInputResult, { ok: true }>): Response {
  const body = jsonRpcInputRefusal(result);
  return new Response(JSON.stringify(body), { status: body.id === null ? 400 : 200, headers: { 'content-type': 'application/json' } });
}

/**
 * A call that could not run or did not complete: `isError` with a message the model can act on,
 * and the same error as `structuredContent` for tools with an output schema (clients do not
 * validate error results against it).
 */
export function errorResult(tool: CatalogTool, code: string, message: string, details: ErrorDetail[] = []): CallToolResult {
  const lines = [message, ...details.map((d) => `- ${d.field ? `${d.field}: ` : ''}${d.message}`)];
  const result: CallToolResult = { isError: true, content: [{ type: 'text', text: `${code}: ${lines.join('\n')}` }] };
  if (advertisedOutputSchema(tool)) result.structuredContent = { error: { code, message, ...(details.length > 0 ? { details } : {}) } };
  return result;
}

/**
 * A call that ran and failed. The tool's own error result (an upstream's `isError`) goes out as
 * it came; an upstream's JSON-RPC error is thrown as that error (the SDK answers it as a JSON-RPC
 * error with the upstream's code, message and data); every other failure is the gateway's own.
 */
export function failedResult(tool: CatalogTool, error: ExecutionError | null, result: unknown = null): CallToolResult {
  if (error?.rpc) throw new ProtocolError(error.rpc.code, error.rpc.message, error.rpc.data);
  if (tool.definition.resultFormat === 'content' && isToolResult(result) && result.isError === true) return relayed(result);
  return errorResult(tool, error?.code ?? 'TOOL_FAILED', error?.message ?? 'The tool failed', error?.details ?? []);
}

/** A refusal of the pipeline (disabled, forbidden, rate limited, invalid parameters) as a tool error. */
export function refusedResult(tool: CatalogTool, refused: AppException): CallToolResult {
  const retryAfter = refused.headers['Retry-After'];
  const message = retryAfter ? `${refused.message} (retry after ${retryAfter} s)` : refused.message;
  return errorResult(tool, String(refused.code), message, refused.details);
}

function rpcError(id: string | number | null, code: number, message: string, data?: unknown): JsonRpcRefusal {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

function requestIdOf(value: unknown): string | number | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const { id, method } = value as { id?: unknown; method?: unknown };
  if (typeof method !== 'string') return null;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}
