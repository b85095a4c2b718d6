import { WebSocket as WsWebSocket } from 'ws';
import { http, HttpResult, startTestApp, TestApp } from '../support/test-app';
import { IdentityClient } from '../auth/identity.helpers';
import { Caller, connectHttp, createApiKey, createContext, listAll, mcpEnv, signUp } from '../mcp/mcp-test-kit';

/**
 * REST, MCP over HTTP and MCP over WebSocket share one edge (Authenticator, RequestRateLimiter,
 * ExecutionScopeResolver): the general rate limit and a bound key's scope decide the same on all
 * three. Each transport's refusal is read in its own form (REST: the contract's Error body; MCP
 * HTTP and a WebSocket upgrade: the JSON-RPC error with the HTTP status; a WebSocket message: the
 * JSON-RPC error answering it) and reduced to the same fields.
 */

const RATE_LIMIT = 4;
const MCP_HEADERS = { accept: 'application/json, text/event-stream', 'content-type': 'application/json' };
const initialize = (id: number) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'parity', version: '1' } },
});

interface Refusal {
  status: number;
  code: string;
  message: string;
}

const wsUrl = (t: TestApp, path: string) => `${t.baseUrl.replace('http://', 'ws://')}${path}`;

/** REST: the contract's Error body. */
function restRefusal(res: HttpResult): Refusal {
  return { status: res.status, code: res.body.error, message: res.body.message };
}

/** MCP over HTTP: the JSON-RPC error, its `data` carrying the contract's code and status. */
function mcpHttpRefusal(res: HttpResult): Refusal {
  expect(res.body.jsonrpc).toBe('2.0');
  expect(res.body.error.data.status).toBe(res.status);
  return { status: res.status, code: res.body.error.data.error, message: res.body.error.message };
}

function mcpPost(t: TestApp, path: string, credential: string, id: number): Promise<HttpResult> {
  return http(t.baseUrl, 'POST', path, { token: credential, body: initialize(id), headers: MCP_HEADERS });
}

/** A WebSocket upgrade: 101 with the open socket, or the refusal's status, headers and JSON body. */
function upgrade(
  t: TestApp,
  path: string,
  credential: string,
): Promise<{ status: 101; socket: WsWebSocket } | { status: number; headers: Record<string, string | string[] | undefined>; body: any }> {
  return new Promise((resolve, reject) => {
    const socket = new WsWebSocket(wsUrl(t, path), ['mcp'], { headers: { authorization: `Bearer ${credential}` } });
    socket.on('unexpected-response', (_request, response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      response.on('end', () => {
        socket.terminate();
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body: JSON.parse(text) });
      });
    });
    socket.on('open', () => resolve({ status: 101, socket }));
    socket.on('error', (error) => reject(error));
  });
}

/** A WebSocket upgrade refusal, reduced like the others. */
async function wsUpgradeRefusal(t: TestApp, path: string, credential: string): Promise<Refusal> {
  const answer = await upgrade(t, path, credential);
  if (answer.status === 101) throw new Error(`upgrade to ${path} was accepted`);
  const { body } = answer as { body: any };
  expect(body.jsonrpc).toBe('2.0');
  expect(body.error.data.status).toBe(answer.status);
  return { status: answer.status, code: body.error.data.error, message: body.error.message };
}

/** Sends one JSON-RPC request on an open socket and waits for the answer with its id. */
function rpc(socket: WsWebSocket, message: Record<string, unknown>): Promise<any> {
  return new Promise((resolve) => {
    const onMessage = (data: Buffer) => {
      const answer = JSON.parse(data.toString('utf8'));
      if (answer.id !== message.id) return;
      socket.off('message', onMessage);
      resolve(answer);
    };
    socket.on('message', onMessage);
    socket.send(JSON.stringify(message));
  });
}

describe('one edge for REST, MCP HTTP and MCP WebSocket: the general rate limit', () => {
  let t: TestApp;
  let api: IdentityClient;

  beforeAll(async () => {
    t = await startTestApp('postgres', { env: mcpEnv({ RATE_LIMIT: String(RATE_LIMIT), RATE_LIMIT_WINDOW: '60' }) });
    api = new IdentityClient(t.baseUrl);
  });
  afterAll(() => t?.close());

  it(`refuses the request after the ${RATE_LIMIT}th the same way on all three transports`, async () => {
    // A caller each (the budget is per user); sign-up spends only the separate auth budget.
    const [restUser, httpUser, wsUser] = [
      await signUp(t, 'rl.rest@example.com'),
      await signUp(t, 'rl.http@example.com'),
      await signUp(t, 'rl.ws@example.com'),
    ];

    const restAnswers: HttpResult[] = [];
    for (let i = 0; i <= RATE_LIMIT; i++) restAnswers.push(await api.me(restUser.token));

    const httpAnswers: HttpResult[] = [];
    for (let i = 0; i <= RATE_LIMIT; i++) httpAnswers.push(await mcpPost(t, '/api/v1/mcp', httpUser.token, i + 1));

    // Over WebSocket the upgrade is the first request, then each message counts.
    const opened = await upgrade(t, '/api/v1/mcp/ws', wsUser.token);
    expect(opened.status).toBe(101);
    const socket = (opened as { socket: WsWebSocket }).socket;
    const wsAnswers = [];
    for (let i = 1; i <= RATE_LIMIT; i++) wsAnswers.push(await rpc(socket, { jsonrpc: '2.0', id: i, method: 'ping' }));
    socket.close();

    expect(restAnswers.map((res) => res.status)).toEqual([200, 200, 200, 200, 429]);
    expect(httpAnswers.map((res) => res.status)).toEqual([200, 200, 200, 200, 429]);
    expect(wsAnswers.map((answer) => (answer.error ? answer.error.data.status : 'ok'))).toEqual(['ok', 'ok', 'ok', 429]);
    expect(wsAnswers.slice(0, 3).map((answer) => answer.result)).toEqual([{}, {}, {}]);

    const rest = restRefusal(restAnswers[RATE_LIMIT]);
    const overHttp = mcpHttpRefusal(httpAnswers[RATE_LIMIT]);
    const refusedMessage = wsAnswers[RATE_LIMIT - 1];
    expect(refusedMessage.id).toBe(RATE_LIMIT);
    const overWs: Refusal = {
      status: refusedMessage.error.data.status,
      code: refusedMessage.error.data.error,
      message: refusedMessage.error.message,
    };
    expect(rest).toEqual({ status: 429, code: 'RATE_LIMIT_EXCEEDED', message: 'Too many requests; retry later' });
    expect(overHttp).toEqual(rest);
    expect(overWs).toEqual(rest);

    // The same headers on both HTTP refusals, and the retry hint in the message's data.
    for (const res of [restAnswers[RATE_LIMIT], httpAnswers[RATE_LIMIT]]) {
      expect(res.headers.get('x-ratelimit-limit')).toBe(String(RATE_LIMIT));
      expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    expect(refusedMessage.error.data.retryAfter).toBeGreaterThan(0);
    // Allowed MCP HTTP answers carry the budget as REST's do.
    expect(httpAnswers.slice(0, RATE_LIMIT).map((res) => res.headers.get('x-ratelimit-remaining'))).toEqual(['3', '2', '1', '0']);

    // Once spent, the WebSocket upgrade itself is refused in the same terms.
    expect(await wsUpgradeRefusal(t, '/api/v1/mcp/ws', wsUser.token)).toEqual(rest);
  });

  it('counts one budget across transports: REST requests spend what MCP may use', async () => {
    const user = await signUp(t, 'rl.mixed@example.com');
    expect((await api.me(user.token)).status).toBe(200);
    expect((await api.me(user.token)).status).toBe(200);
    expect((await mcpPost(t, '/api/v1/mcp', user.token, 1)).status).toBe(200);
    const opened = await upgrade(t, '/api/v1/mcp/ws', user.token);
    expect(opened.status).toBe(101);
    const socket = (opened as { socket: WsWebSocket }).socket;
    const refused = await rpc(socket, { jsonrpc: '2.0', id: 7, method: 'ping' });
    socket.close();
    expect({ id: refused.id, status: refused.error.data.status, code: refused.error.data.error }).toEqual({
      id: 7,
      status: 429,
      code: 'RATE_LIMIT_EXCEEDED',
    });
    expect(restRefusal(await api.me(user.token)).status).toBe(429);
    expect(mcpHttpRefusal(await mcpPost(t, '/api/v1/mcp', user.token, 2)).code).toBe('RATE_LIMIT_EXCEEDED');
  });
});

describe("one edge for REST, MCP HTTP and MCP WebSocket: a bound key's scope", () => {
  let t: TestApp;
  let owner: Caller;
  let stranger: Caller;
  let home: string;
  let elsewhere: string;
  let boundKey: string;

  beforeAll(async () => {
    t = await startTestApp('postgres', { env: mcpEnv() });
    owner = await signUp(t, 'scope.owner@example.com');
    stranger = await signUp(t, 'scope.stranger@example.com');
    home = await createContext(t, owner, 'home', ['tool_echo']);
    elsewhere = await createContext(t, owner, 'elsewhere', ['tool_statistics']);
    boundKey = (await createApiKey(t, owner, { name: 'bound', contextId: home })).key;
  });
  afterAll(() => t?.close());

  it("lists only its context's tools on all three transports", async () => {
    const rest = await http(t.baseUrl, 'GET', '/api/v1/tools?limit=100', { token: boundKey });
    expect(rest.status).toBe(200);
    const restNames = rest.body.tools.map((tool: { id: string }) => tool.id);
    expect(rest.body.pagination.total).toBe(1);

    const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, boundKey, 'modern');
    const httpNames = await listAll(client);
    await client.close();

    const opened = await upgrade(t, '/api/v1/mcp/ws', boundKey);
    expect(opened.status).toBe(101);
    const socket = (opened as { socket: WsWebSocket }).socket;
    const init = await rpc(socket, initialize(1));
    expect(init.result.serverInfo.name).toBe('secure-mcp-server');
    socket.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    const listed = await rpc(socket, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} });
    socket.close();
    const wsNames = listed.result.tools.map((tool: { name: string }) => tool.name);

    expect(restNames).toEqual(['tool_echo']);
    expect(httpNames).toEqual(restNames);
    expect(wsNames).toEqual(restNames);
    // A tool outside the context does not exist for the key (REST: 404; MCP: not listed above).
    const outside = await http(t.baseUrl, 'GET', '/api/v1/tools/tool_statistics', { token: boundKey });
    expect({ status: outside.status, code: outside.body.error }).toEqual({ status: 404, code: 'NOT_FOUND' });
  });

  it('refuses another context the same way on all three transports', async () => {
    const rest = restRefusal(
      await http(t.baseUrl, 'POST', '/api/v1/tools/tool_echo/execute', {
        token: boundKey,
        body: { parameters: { message: 'escape' }, context: { contextId: elsewhere } },
      }),
    );
    const overHttp = mcpHttpRefusal(await mcpPost(t, `/api/v1/contexts/${elsewhere}/mcp`, boundKey, 1));
    const overWs = await wsUpgradeRefusal(t, `/api/v1/contexts/${elsewhere}/mcp/ws`, boundKey);
    expect(rest).toEqual({ status: 403, code: 'FORBIDDEN', message: 'This API key is bound to another context' });
    expect(overHttp).toEqual(rest);
    expect(overWs).toEqual(rest);
  });

  it("refuses a context that is not the caller's the same way on all three transports (it does not exist for them)", async () => {
    const rest = restRefusal(
      await http(t.baseUrl, 'POST', '/api/v1/tools/tool_echo/execute', {
        token: stranger.token,
        body: { parameters: { message: 'peek' }, context: { contextId: home } },
      }),
    );
    const overHttp = mcpHttpRefusal(await mcpPost(t, `/api/v1/contexts/${home}/mcp`, stranger.token, 1));
    const overWs = await wsUpgradeRefusal(t, `/api/v1/contexts/${home}/mcp/ws`, stranger.token);
    expect(rest).toEqual({ status: 404, code: 'NOT_FOUND', message: 'Context not found' });
    expect(overHttp).toEqual(rest);
    expect(overWs).toEqual(rest);
  });
});
