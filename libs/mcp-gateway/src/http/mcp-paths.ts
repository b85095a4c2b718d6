/**
 * Where the gateway listens. The MCP routes are plain Fastify routes (they need the raw body and
 * stream their answers), so they carry the application's global prefix themselves.
 */
export const API_PREFIX = '/api/v1';
export const MCP_PATH = `${API_PREFIX}/mcp`;
export const CONTEXT_MCP_PATH = `${API_PREFIX}/contexts/:id/mcp`;
export const MCP_WS_PATH = `${API_PREFIX}/mcp/ws`;
export const CONTEXT_MCP_WS_PATH = `${API_PREFIX}/contexts/:id/mcp/ws`;
/** RFC 9728 metadata, at the root and in its resource-specific form. */
export const PROTECTED_RESOURCE_PATH = '/.well-known/oauth-protected-resource';
/** Largest MCP message accepted (HTTP body or WebSocket frame). */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
