import { loopbackServer as server } from './loopback-server.test-helpers';
import { upstreamFetch } from './upstream-fetch';

describe('upstreamFetch (the upstream transport fetch on kept-alive connections)', () => {
  const send = upstreamFetch();
  let upstream: Awaited<ReturnType<typeof server>> | undefined;
  afterEach(async () => upstream?.close());

  it('sends the method, headers and body as given and answers the JSON body as a Response would', async () => {
    upstream = await server((_req, res, body) => {
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 's-1' });
      res.end(JSON.stringify({ echoed: JSON.parse(body) }));
    });
    const headers = new Headers({ 'content-type': 'application/json', 'mcp-protocol-version': '2026-07-28', Authorization: 'Bearer t' });
    const response = await send(new URL(`${upstream.url}/mcp?x=1`), { method: 'POST', headers, body: '{"a":"é"}' });

    expect(response.status).toBe(200);
    expect(response.ok).toBe(true);
    expect(response.headers.get('mcp-session-id')).toBe('s-1');
    expect(response.headers.get('Content-Type')).toBe('application/json');
    expect(response.headers.has('x-absent')).toBe(false);
    expect(response.headers.get('x-absent')).toBeNull();
    expect(response.url).toBe(`${upstream.url}/mcp?x=1`);
    expect(await response.json()).toEqual({ echoed: { a: 'é' } });
    const [request] = upstream.seen;
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/mcp?x=1');
    expect(request.headers['mcp-protocol-version']).toBe('2026-07-28');
    expect(request.headers.authorization).toBe('Bearer t');
    expect(request.headers['content-length']).toBe(String(Buffer.byteLength('{"a":"é"}')));
    expect(request.body).toBe('{"a":"é"}');
  });

  it('reads a buffered body once, as a Response does, by json(), text() or its stream', async () => {
    upstream = await server((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-many': ['a', 'b'] });
      res.end('\ufeff{"text":"héllo"}');
    });
    const first = await send(`${upstream.url}/mcp`, { method: 'POST', body: '{}' });
    expect(first.headers.get('x-many')).toBe('a, b');
    expect(first.bodyUsed).toBe(false);
    expect(await first.clone().text()).toBe('{"text":"héllo"}');
    expect(await first.json()).toEqual({ text: 'héllo' });
    expect(first.bodyUsed).toBe(true);
    await expect(first.text()).rejects.toThrow(TypeError);

    const second = await send(`${upstream.url}/mcp`, { method: 'POST', body: '{}' });
    expect(await new Response(second.body).text()).toBe('{"text":"héllo"}');
    await expect(second.json()).rejects.toThrow(TypeError);
  });

  it('answers an error status as a standard Response', async () => {
    upstream = await server((_req, res) => res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"bad"}'));
    const response = await send(`${upstream.url}/mcp`, { method: 'POST', body: '{}' });

    expect(response).toBeInstanceOf(Response);
    expect(response.ok).toBe(false);
    expect(await response.text()).toBe('{"error":"bad"}');
  });

  it('reuses one connection for requests one after another', async () => {
    upstream = await server((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    for (let i = 0; i < 3; i++) await (await send(`${upstream.url}/mcp`, { method: 'POST', body: '{}' })).text();

    expect(upstream.seen).toHaveLength(3);
    expect(upstream.seen[1].socket).toBe(upstream.seen[0].socket);
    expect(upstream.seen[2].socket).toBe(upstream.seen[0].socket);
  });

  it('hands an event stream over as it arrives, before the upstream has finished it', async () => {
    let finish!: () => void;
    upstream = await server((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"first":true}\n\n');
      finish = () => res.end('data: {"last":true}\n\n');
    });
    const response = await send(`${upstream.url}/mcp`, { method: 'POST', body: '{}' });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();

    const first = await reader.read();
    expect(decoder.decode(first.value)).toBe('data: {"first":true}\n\n');
    finish();
    let rest = '';
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += decoder.decode(chunk.value);
    expect(rest).toBe('data: {"last":true}\n\n');
  });

  it('returns a redirect as it came (the SDK decides whether to follow it)', async () => {
    upstream = await server((_req, res) => res.writeHead(307, { location: 'http://elsewhere.example/mcp' }).end());
    const response = await send(`${upstream.url}/mcp`, { method: 'POST', body: '{}', redirect: 'manual' });

    expect(response.status).toBe(307);
    expect(response.headers.get('location')).toBe('http://elsewhere.example/mcp');
    expect(upstream.seen).toHaveLength(1);
  });

  it('rejects as fetch does: connection errors as TypeError with the system error as cause, an abort with its reason', async () => {
    upstream = await server(() => undefined); // never answers
    const closed = await server(() => undefined);
    const refusedUrl = closed.url;
    await closed.close();

    const refused = await send(`${refusedUrl}/mcp`, { method: 'POST', body: '{}' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TypeError);
    expect(((refused as TypeError).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');

    const abort = new AbortController();
    const pending = send(`${upstream.url}/mcp`, { method: 'POST', body: '{}', signal: abort.signal }).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const reason = new Error('cancelled by the agent');
    abort.abort(reason);
    expect(await pending).toBe(reason);
  });
});
