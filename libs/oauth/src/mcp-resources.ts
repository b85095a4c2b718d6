/**
 * The MCP endpoints as OAuth protected resources (RFC 8707 / RFC 9728): their canonical URLs are
 * the audiences of our access tokens, one per endpoint, so a token for `/api/v1/mcp` is refused on
 * `/api/v1/contexts/{id}/mcp` and the other way round. The WebSocket transport of an endpoint
 * (`…/mcp/ws`) is the same resource as its HTTP endpoint.
 */
export const MCP_RESOURCE_PATH = '/api/v1/mcp';
const CONTEXT_RESOURCE = /^\/api\/v1\/contexts\/([A-Za-z0-9_-]{1,128})\/mcp$/;

/** The canonical URL of an MCP endpoint at this origin: the gateway's, or a context's. */
export function mcpResourceUrl(origin: string, contextId?: string): string {
  return contextId === undefined ? `${origin}${MCP_RESOURCE_PATH}` : `${origin}/api/v1/contexts/${encodeURIComponent(contextId)}/mcp`;
}

/**
 * Whether `indicator` names one of our MCP endpoints, on one of `hosts` (host names, ports
 * ignored): absolute http(s) URL, no query, fragment or credentials, the exact path of an endpoint.
 */
export function isMcpResource(indicator: string, hosts: readonly string[]): boolean {
  let url: URL;
  try {
    url = new URL(indicator);
  } catch {
    return false;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return false;
  if (url.search || url.hash || url.username || url.password || url.href !== indicator) return false;
  if (!hosts.includes(url.hostname.toLowerCase())) return false;
  return url.pathname === MCP_RESOURCE_PATH || CONTEXT_RESOURCE.test(url.pathname);
}
