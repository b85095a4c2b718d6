import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { WebSocket } from 'ws';
import { startTestApp, TestApp } from '../support/test-app';
import { Caller, Era, mcpEnv, signUp, ticketFor, upgradeStatus } from '../mcp/mcp-test-kit';

/**
 * MCP messages follow the same input rules as REST bodies: a `__proto__` (or
 * `constructor.prototype`) key, a NUL or a lone surrogate anywhere is refused as invalid params
 * (REST answers 400), and JSON nested past the limit is refused before anything recursive runs.
 * Both protocol eras over HTTP, and WebSocket frames.
 */
describe('MCP input rules (postgres)', () => {
  let t: TestApp;
  let user: Caller;
  const INVALID_PARAMS = -32602;

  beforeAll(async () => {
    t = await startTestApp('postgres', { env: mcpEnv() });
    user = await signUp(t, 'mcp-input@example.com');
  });
  afterAll(() => t?.close());

  /** A real SDK client whose tools/call bodies are rewritten on the wire (the SDK itself would never send them). */
  async function connect(era: Era, rewrite: (body: string) => string): Promise<Client> {
    const fetchRewriting = (url: string | URL, init?: RequestInit) => {
      const body = init?.body;
      if (typeof body === 'string' && body.includes('"tools/call"')) return fetch(url, { ...init, body: rewrite(body) });
      return fetch(url, init);
    };
    const transport = new StreamableHTTPClientTransport(new URL(`${t.baseUrl}/api/v1/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${user.token}` } },
      fetch: fetchRewriting,
    });
    const client =
      era === 'modern'
        ? new Client({ name: 'e2e-input', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } })
        : new Client({ name: 'e2e-input', version: '1.0.0' });
    await client.connect(transport);
    return client;
  }

  const injectArgument = (text: string) => (body: string) => body.replace('"arguments":{', `"arguments":{${text},`);

  describe.each<Era>(['modern', 'legacy'])('over HTTP (%s era)', (era) => {
    it.each([
      ['a "__proto__" key', '"__proto__":{"polluted":true}', 'params.arguments.__proto__', 'forbiddenKey'],
      ['a "constructor.prototype" key', '"constructor":{"prototype":{"polluted":true}}', 'params.arguments.constructor', 'forbiddenKey'],
      ['a NUL in a string', '"note":"a\\u0000b"', 'params.arguments.note', 'nulCharacter'],
      ['a lone surrogate', '"note":"\\udc00"', 'params.arguments.note', 'loneSurrogate'],
    ])('refuses a tools/call carrying %s as invalid params, naming the field', async (_label, injected, field, code) => {
      const client = await connect(era, injectArgument(injected));
      try {
        const error = await client.callTool({ name: 'tool_echo', arguments: { message: 'hi' } }).then(
          () => undefined,
          (e: unknown) => e as { code?: number; data?: { details?: Array<{ field?: string; code?: string }> } },
        );
        expect(error?.code).toBe(INVALID_PARAMS);
        expect(error?.data?.details?.map((d) => `${d.field}:${d.code}`)).toEqual([`${field}:${code}`]);
      } finally {
        await client.close();
      }
    });

    it('still serves the same call without the injected key', async () => {
      const client = await connect(era, (body) => body);
      try {
        expect((await client.callTool({ name: 'tool_echo', arguments: { message: 'hi' } })).structuredContent).toEqual({ message: 'hi' });
      } finally {
        await client.close();
      }
    });
  });

  it('refuses a message nested past the limit over HTTP with a JSON-RPC invalid request, before any parse-time recursion', async () => {
    const deep = '['.repeat(1500) + ']'.repeat(1500);
    const res = await fetch(`${t.baseUrl}/api/v1/mcp`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user.token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"tool_echo","arguments":{"message":${deep}}}}`,
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { id: unknown; error?: { code?: number } };
    expect({ id: body.id, code: body.error?.code }).toEqual({ id: null, code: -32600 });
  });

  describe('over WebSocket', () => {
    /** A raw socket, so the frames are exactly what the test writes. */
    async function open(): Promise<{ send(frame: string): Promise<any>; notify(frame: string): void; close(): void }> {
      const url = `${t.baseUrl.replace('http://', 'ws://')}/api/v1/mcp/ws?ticket=${await ticketFor(t, user.token)}`;
      const socket = new WebSocket(url, ['mcp']);
      const answers: any[] = [];
      const waiting: Array<(message: any) => void> = [];
      socket.on('message', (data) => {
        const message = JSON.parse(String(data));
        const waiter = waiting.shift();
        if (waiter) waiter(message);
        else answers.push(message);
      });
      await new Promise((resolve, reject) => {
        socket.once('open', resolve);
        socket.once('error', reject);
      });
      const next = () => (answers.length > 0 ? Promise.resolve(answers.shift()) : new Promise((resolve) => waiting.push(resolve)));
      return {
        send: (frame: string) => {
          socket.send(frame);
          return next();
        },
        notify: (frame: string) => socket.send(frame),
        close: () => socket.close(),
      };
    }

    it('refuses an upgrade whose context id or query holds NUL with 400, not a 500 from the lookup', async () => {
      const base = t.baseUrl.replace('http://', 'ws://');
      expect(await upgradeStatus(`${base}/api/v1/contexts/ctx%00x/mcp/ws?ticket=${await ticketFor(t, user.token)}`)).toBe(400);
      expect(await upgradeStatus(`${base}/api/v1/mcp/ws?ticket=${await ticketFor(t, user.token)}&x=%00`)).toBe(400);
      expect(await upgradeStatus(`${base}/api/v1/mcp/ws?ticket=${await ticketFor(t, user.token)}`)).toBe(101);
    });

    it('answers a polluted, NUL-carrying or too deep frame with a JSON-RPC error and keeps the session usable', async () => {
      const ws = await open();
      try {
        const init = await ws.send(
          JSON.stringify({
            jsonrpc: '2.0',
            id: 1,
            method: 'initialize',
            params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
          }),
        );
        expect(init.result?.protocolVersion).toBeDefined();
        ws.notify(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));

        const polluted = await ws.send(
          '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"tool_echo","arguments":{"message":"x","__proto__":{"polluted":true}}}}',
        );
        expect({
          id: polluted.id,
          code: polluted.error?.code,
          fields: polluted.error?.data?.details?.map((d: { field: string }) => d.field),
        }).toEqual({
          id: 2,
          code: INVALID_PARAMS,
          fields: ['params.arguments.__proto__'],
        });
        const nul = await ws.send(
          '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"tool_echo","arguments":{"message":"a\\u0000"}}}',
        );
        expect({ id: nul.id, code: nul.error?.code }).toEqual({ id: 3, code: INVALID_PARAMS });
        const deep = await ws.send(`{"jsonrpc":"2.0","id":4,"method":"ping","params":{"x":${'['.repeat(1500) + ']'.repeat(1500)}}}`);
        expect({ id: deep.id, code: deep.error?.code }).toEqual({ id: null, code: -32600 });

        const fine = await ws.send(
          '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"tool_echo","arguments":{"message":"still here"}}}',
        );
        expect({ id: fine.id, result: fine.result?.structuredContent }).toEqual({ id: 5, result: { message: 'still here' } });
      } finally {
        ws.close();
      }
    });
  });
});
