import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { WebSocket as WsWebSocket } from 'ws';
import { http, TestApp } from '../support/test-app';
import { Caller, identityEnv } from '../support/identity';

export { login, PASSWORD, signUp } from '../support/identity';
export type { Caller } from '../support/identity';
export { eventually } from '../support/polling';

/** Environment for the MCP suites: the tools suites' (fast hashing, first admin, limits out of the way). */
export function mcpEnv(extra: Record<string, string> = {}): Record<string, string> {
  return identityEnv({ ...extra });
}

/** The v1 SDK's WebSocket client transport uses globalThis.WebSocket, which Node 20 lacks. */
export function installWebSocketGlobal(): void {
  const scope = globalThis as unknown as { WebSocket?: unknown };
  if (typeof scope.WebSocket === 'undefined') scope.WebSocket = WsWebSocket;
}

export type Era = 'modern' | 'legacy';

/** A client of the official v2 SDK: pinned to 2026-07-28, or on the 2025 era (initialize). */
export async function connectHttp(
  url: string,
  credential: string,
  era: Era,
  options: { protocolVersion?: string } = {},
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { authorization: `Bearer ${credential}` } },
  });
  const client =
    era === 'modern'
      ? new Client({ name: 'e2e-modern', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } })
      : new Client(
          { name: 'e2e-legacy', version: '1.0.0' },
          options.protocolVersion ? { supportedProtocolVersions: [options.protocolVersion] } : {},
        );
  await client.connect(transport);
  return { client, transport };
}

/** Every tool name over every page. */
export async function listAll(client: Client): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listTools(cursor ? { cursor } : {});
    names.push(...page.tools.map((tool) => tool.name));
    cursor = page.nextCursor;
  } while (cursor);
  return names;
}

export async function createApiKey(t: TestApp, owner: Caller, body: Record<string, unknown>): Promise<{ id: string; key: string }> {
  const res = await http(t.baseUrl, 'POST', '/api/v1/auth/api-keys', { token: owner.token, body });
  if (res.status !== 201) throw new Error(`create key: ${res.status} ${res.text}`);
  return { id: res.body.id, key: res.body.key };
}

export async function createContext(t: TestApp, owner: Caller, name: string, tools: string[]): Promise<string> {
  const res = await http(t.baseUrl, 'POST', '/api/v1/contexts', { token: owner.token, body: { name, tools } });
  if (res.status !== 201) throw new Error(`create context: ${res.status} ${res.text}`);
  return res.body.id;
}

export async function ticketFor(t: TestApp, credential: string): Promise<string> {
  const res = await http(t.baseUrl, 'POST', '/api/v1/mcp/tickets', { token: credential });
  if (res.status !== 200) throw new Error(`ticket: ${res.status} ${res.text}`);
  return res.body.ticket;
}

/** The HTTP status a refused WebSocket upgrade answers with (or 101 when it is accepted). */
export function upgradeStatus(url: string, headers: Record<string, string> = {}, protocols: string[] = ['mcp']): Promise<number> {
  return new Promise((resolve) => {
    const socket = new WsWebSocket(url, protocols, { headers });
    socket.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      socket.terminate();
    });
    socket.on('open', () => {
      resolve(101);
      socket.close();
    });
    socket.on('error', () => undefined);
  });
}

/** A 2025-era MCP session opened by hand at `url` (initialize, then notifications/initialized); returns its id. */
export async function initializeLegacy(url: string, credential: string): Promise<string> {
  const headers = {
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    authorization: `Bearer ${credential}`,
  };
  const initialize = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    }),
  });
  await initialize.text();
  const sessionId = initialize.headers.get('mcp-session-id');
  if (initialize.status !== 200 || !sessionId) throw new Error(`initialize: ${initialize.status}`);
  const initialized = await fetch(url, {
    method: 'POST',
    headers: { ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  await initialized.text();
  if (initialized.status !== 202) throw new Error(`initialized: ${initialized.status}`);
  return sessionId;
}
