/** Error codes the gateway answers with outside the SDK (the SDK's own answers use the same shapes). */
export const JsonRpcCode = {
  PARSE_ERROR: -32700,
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
