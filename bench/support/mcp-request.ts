import type { Target } from './load';

export const MCP_VERSION = '2026-07-28';

/** One stateless MCP request of the 2026-07-28 revision (per-request _meta, Mcp-Method/Mcp-Name headers). */
export function mcpRequest(
  url: string,
  method: 'tools/call' | 'tools/list' | 'prompts/get' | 'resources/read',
  params: { name?: string; uri?: string; arguments?: unknown },
  token?: string,
): Target {
  // Mcp-Name mirrors params.name (tools/call, prompts/get) or params.uri (resources/read).
  const mcpName = method === 'resources/read' ? params.uri : params.name;
  return {
    url,
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': MCP_VERSION,
      'mcp-method': method,
      ...(mcpName ? { 'mcp-name': mcpName } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method,
      params: {
        ...params,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': MCP_VERSION,
          'io.modelcontextprotocol/clientInfo': { name: 'bench', version: '1.0.0' },
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    }),
  };
}
