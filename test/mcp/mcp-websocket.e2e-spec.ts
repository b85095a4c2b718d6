import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { WebSocketClientTransport } from '@modelcontextprotocol/sdk/client/websocket.js';
import { http, startTestApp, TestApp } from '../support/test-app';
import {
  Caller,
  createApiKey,
  createContext,
  installWebSocketGlobal,
  listAll,
  mcpEnv,
  signUp,
  ticketFor,
  upgradeStatus,
} from './mcp-test-kit';

installWebSocketGlobal();

const wsUrl = (t: TestApp, path: string, query = '') => `${t.baseUrl.replace('http://', 'ws://')}${path}${query}`;

/** The v1 SDK's WebSocketClientTransport (subprotocol "mcp", no headers: a ticket in the URL). */
async function connectWs(t: TestApp, path: string, ticket: string): Promise<{ client: Client; transport: WebSocketClientTransport }> {
  const transport = new WebSocketClientTransport(new URL(wsUrl(t, path, `?ticket=${ticket}`)));
  const client = new Client({ name: 'e2e-ws', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

describe('MCP over WebSocket (v1 SDK client, tickets)', () => {
  let t: TestApp;
  let user: Caller;

  beforeAll(async () => {
    t = await startTestApp('postgres', { env: mcpEnv({ MCP_TICKET_TTL: '5' }) });
    user = await signUp(t, 'ws-user@example.com');
  });
  afterAll(() => t?.close());

  it('lists and calls tools with a ticket, as one websocket session; terminating it closes the socket with 4001', async () => {
    const { client, transport } = await connectWs(t, '/api/v1/mcp/ws', await ticketFor(t, user.token));
    expect((transport as unknown as { _socket: WebSocket })._socket.protocol).toBe('mcp');
    expect(await listAll(client as never)).toContain('tool_echo');
    const result = await client.callTool({ name: 'tool_echo', arguments: { message: 'over ws' } });
    expect(result.structuredContent).toEqual({ message: 'over ws' });

    const sessions = await http(t.baseUrl, 'GET', '/api/v1/sessions', { token: user.token });
    const ws = sessions.body.sessions.filter(
      (s: { connectionType: string; status: string }) => s.connectionType === 'websocket' && s.status === 'active',
    );
    expect(ws).toHaveLength(1);

    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      (transport as unknown as { _socket: WebSocket })._socket.addEventListener('close', (event) =>
        resolve({ code: event.code, reason: String(event.reason) }),
      ),
    );
    const onclose = new Promise<void>((resolve) => (client.onclose = () => resolve()));
    expect((await http(t.baseUrl, 'POST', `/api/v1/sessions/${ws[0].id}/terminate`, { token: user.token })).status).toBe(200);
    expect(await closed).toEqual({ code: 4001, reason: 'session terminated' });
    await onclose;
  });

  it("does the same with an API key's ticket on a context endpoint, which shows only its tools", async () => {
    const contextId = await createContext(t, user, 'ws-context', ['tool_echo']);
    const { key } = await createApiKey(t, user, { name: 'ws-agent' });
    const { client } = await connectWs(t, `/api/v1/contexts/${contextId}/mcp/ws`, await ticketFor(t, key));
    expect(await listAll(client as never)).toEqual(['tool_echo']);
    expect((await client.callTool({ name: 'tool_echo', arguments: { message: 'ctx' } })).structuredContent).toEqual({ message: 'ctx' });
    await client.close();
  });

  it('refuses a used, forged or missing ticket, tokens in the URL, a foreign Origin and a missing subprotocol', async () => {
    const ticket = await ticketFor(t, user.token);
    const url = wsUrl(t, '/api/v1/mcp/ws', `?ticket=${ticket}`);
    expect(await upgradeStatus(url)).toBe(101);
    expect(await upgradeStatus(url)).toBe(401); // single use
    expect(await upgradeStatus(wsUrl(t, '/api/v1/mcp/ws', '?ticket=mcpt_forged'))).toBe(401);
    expect(await upgradeStatus(wsUrl(t, '/api/v1/mcp/ws'))).toBe(401);
    expect(await upgradeStatus(wsUrl(t, '/api/v1/mcp/ws', `?access_token=${user.token}`))).toBe(401);
    expect(await upgradeStatus(wsUrl(t, '/api/v1/mcp/ws', `?ticket=${user.token}`))).toBe(401);
    expect(
      await upgradeStatus(wsUrl(t, '/api/v1/mcp/ws', `?ticket=${await ticketFor(t, user.token)}`), { origin: 'https://evil.example' }),
    ).toBe(403);
    expect(await upgradeStatus(wsUrl(t, '/api/v1/mcp/ws', `?ticket=${await ticketFor(t, user.token)}`), {}, ['chat'])).toBe(400);
    expect(await upgradeStatus(wsUrl(t, '/api/v1/contexts/ctx_unknown/mcp/ws', `?ticket=${await ticketFor(t, user.token)}`))).toBe(404);
    // A client that can send headers may use its bearer token there instead.
    expect(await upgradeStatus(wsUrl(t, '/api/v1/mcp/ws'), { authorization: `Bearer ${user.token}` })).toBe(101);
  });
});
