import Fastify, { FastifyInstance } from 'fastify';
import { JsonAnswer } from './json-answer';
import { sendWebResponse, toModernRequest } from './web-exchange';

const MESSAGE = { jsonrpc: '2.0' as const, id: 3, result: { content: [{ type: 'text', text: 'héllo ✓' }] } };

describe('web exchange', () => {
  let app: FastifyInstance;
  let seen: Request | undefined;
  let released: () => void = () => undefined;
  let hold: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    hold = resolve;
  });

  beforeAll(async () => {
    app = Fastify({ forceCloseConnections: true });
    app.get('/sdk', (_request, reply) =>
      sendWebResponse(reply, Response.json(MESSAGE, { headers: { 'Content-Type': 'application/json' } })),
    );
    app.get('/direct', (_request, reply) => sendWebResponse(reply, new JsonAnswer(MESSAGE)));
    app.get('/request', async (request, reply) => {
      seen = toModernRequest(request, reply);
      return 'ok';
    });
    app.get('/slow', (request, reply) => {
      seen = toModernRequest(request, reply);
      released();
      hold();
      // Answers only once the client has gone.
      return new Promise((resolve) => seen!.signal.addEventListener('abort', () => resolve('late')));
    });
    await app.ready();
  });

  afterAll(() => app.close());

  it('sends a JsonAnswer with the status, content type and bytes of the Response it stands for', async () => {
    const sdk = await app.inject({ method: 'GET', url: '/sdk' });
    const direct = await app.inject({ method: 'GET', url: '/direct' });

    expect(direct.statusCode).toBe(sdk.statusCode);
    expect(direct.headers['content-type']).toBe('application/json');
    expect(direct.headers['content-type']).toBe(sdk.headers['content-type']);
    expect(direct.headers['content-length']).toBe(sdk.headers['content-length']);
    expect(direct.rawPayload.equals(sdk.rawPayload)).toBe(true);
  });

  it("gives the SDK the request's method, URL and headers as Headers would", async () => {
    await app.inject({
      method: 'GET',
      url: '/request?x=1',
      headers: { host: 'mcp.example.com', 'MCP-Protocol-Version': '2026-07-28', accept: 'application/json, text/event-stream' },
    });

    expect(seen!.method).toBe('GET');
    expect(seen!.url).toBe('http://mcp.example.com/request?x=1');
    expect(seen!.headers.get('mcp-protocol-version')).toBe('2026-07-28');
    expect(seen!.headers.get('Mcp-Protocol-Version')).toBe('2026-07-28');
    expect(seen!.headers.get('mcp-name')).toBeNull();
    expect(seen!.headers.has('accept')).toBe(true);
    const names: string[] = [];
    seen!.headers.forEach((_value, name) => names.push(name));
    expect(names).toEqual(expect.arrayContaining(['accept', 'host', 'mcp-protocol-version']));
  });

  it('its signal is aborted only when the client goes away before the answer is complete', async () => {
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    await (await fetch(`${base}/request`)).text();
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen!.signal.aborted).toBe(false);

    const aborted = new Promise<Event>((resolve) => {
      released = () => seen!.signal.addEventListener('abort', resolve);
    });
    const client = new AbortController();
    const call = fetch(`${base}/slow`, { signal: client.signal });
    await held;
    client.abort();
    await expect(call).rejects.toThrow();
    expect((await aborted).type).toBe('abort');
    expect(seen!.signal.aborted).toBe(true);
  });
});
