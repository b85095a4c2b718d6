import type { JsonInputResult } from '@app/core';

/** Error codes the gateway answers with outside the SDK (the SDK's own answers use the same shapes). */
export const JsonRpcCode = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  INVALID_PARAMS: -32602,
  /** Transport-level refusals (bad request, forbidden, session problems), as the SDK's transports use it. */
  SERVER_ERROR: -32000,
  /** Authentication required or refused. */
  UNAUTHORIZED: -32001,
  /** An Mcp-Session-Id that is unknown or ended (as the SDK's sessionful transport answers it). */
  SESSION_NOT_FOUND: -32001,
} as const;

/** A JSON-RPC error answered over HTTP (id null: it is about the request, not a message in it). */
export function jsonRpcErrorResponse(status: number, code: number, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

export interface JsonRpcRefusal {
  jsonrpc: '2.0';
  id: string | number | null;
  error: { code: number; message: string; data?: unknown };
}

/**
 * The answer to a message the input rules refused (see parseJsonInput), the same on HTTP and
 * WebSocket: not JSON is a parse error; too deep an invalid request; a NUL, lone surrogate or
 * `__proto__` anywhere is invalid params, answered to the request's id with the offending fields
 * (REST refuses the same bodies with a 400).
 */
export function jsonRpcInputRefusal(result: Exclude<JsonInputResult, { ok: true }>): JsonRpcRefusal {
  if (result.reason === 'syntax') return refusal(null, JsonRpcCode.PARSE_ERROR, 'Parse error: the message is not valid JSON');
  if (result.reason !== 'content') {
    return refusal(null, JsonRpcCode.INVALID_REQUEST, `Invalid Request: ${result.details[0]?.message ?? 'nested too deeply'}`, { details: result.details });
  }
  return refusal(requestIdOf(result.value), JsonRpcCode.INVALID_PARAMS, 'Invalid params: the message carries refused strings or keys', {
    details: result.details,
  });
}

/** The HTTP form: a request that has an id gets its error as its answer; anything else is a 400. */
export function jsonRpcInputRefusalResponse(result: Exclude<JsonInputResult, { ok: true }>): Response {
  const body = jsonRpcInputRefusal(result);
  return new Response(JSON.stringify(body), { status: body.id === null ? 400 : 200, headers: { 'content-type': 'application/json' } });
}

function refusal(id: string | number | null, code: number, message: string, data?: unknown): JsonRpcRefusal {
  return { jsonrpc: '2.0', id, error: data === undefined ? { code, message } : { code, message, data } };
}

function requestIdOf(value: unknown): string | number | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null;
  const { id, method } = value as { id?: unknown; method?: unknown };
  if (typeof method !== 'string') return null;
  return typeof id === 'string' || typeof id === 'number' ? id : null;
}
