import { createServer, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
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

  it('keeps connections alive and reuses them for requests one after another', async () => {
    upstream = await server((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    for (let i = 0; i < 8; i++) await (await send(`${upstream.url}/mcp`, { method: 'POST', body: '{}' })).text();

    // undici hands the next request to a second connection while the first is still being released, then
    // takes turns between the two: kept alive and reused, not one connection per request.
    expect(upstream.seen).toHaveLength(8);
    expect(new Set(upstream.seen.map((seen) => seen.socket)).size).toBeLessThanOrEqual(2);
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

describe('upstreamFetch over plain http: framing and connections', () => {
  const send = upstreamFetch();
  const servers: Array<{ close(): void }> = [];
  afterEach(() => servers.splice(0).forEach((server) => server.close()));

  /** A raw TCP server answering each request with `answer(requestText)` (bytes written as given, in pieces). */
  async function raw(
    answer: (request: string, socket: Socket) => void,
  ): Promise<{ url: string; requests: string[]; sockets: Set<Socket> }> {
    const requests: string[] = [];
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString('latin1');
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
        if (text.length < end + 4 + length) return;
        const request = text.slice(0, end + 4 + length);
        text = text.slice(end + 4 + length);
        requests.push(request);
        answer(request, socket);
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push({ close: () => (sockets.forEach((socket) => socket.destroy()), server.close()) });
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, sockets };
  }

  /** Writes `bytes` one byte at a time (each its own write), so the parser sees every boundary. */
  async function trickle(socket: Socket, bytes: string): Promise<void> {
    for (const byte of bytes) {
      socket.write(byte, 'latin1');
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  it('reads a chunked answer split at every byte (extensions, trailers) and keeps the connection', async () => {
    const body = '{"result":"héllo"}';
    const bytes = Buffer.from(body);
    const upstream = await raw((_request, socket) => {
      const chunked = `${(5).toString(16)};ext=1\r\n${bytes.subarray(0, 5).toString('latin1')}\r\n${(bytes.length - 5).toString(16)}\r\n${bytes.subarray(5).toString('latin1')}\r\n0\r\nx-trailer: t\r\n\r\n`;
      void trickle(
        socket,
        `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n${chunked}`,
      );
    });
    for (let i = 0; i < 2; i++) {
      const response = await send(`${upstream.url}/mcp`, { method: 'POST', headers: { 'x-one': 'v' }, body: '{"a":1}' });
      expect(response.status).toBe(200);
      expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
      expect(await response.json()).toEqual({ result: 'héllo' });
    }
    expect(upstream.sockets.size).toBeLessThanOrEqual(2);
    const [head, sent] = upstream.requests[0].split('\r\n\r\n');
    const lines = head.split('\r\n');
    expect(lines[0]).toBe('POST /mcp HTTP/1.1');
    expect(lines.slice(1).map((line) => line.toLowerCase())).toEqual(
      expect.arrayContaining([`host: ${new URL(upstream.url).host}`, 'connection: keep-alive', 'x-one: v', 'content-length: 7']),
    );
    expect(sent).toBe('{"a":1}');
  });

  it('reads a Content-Length body and a body that ends with the connection (not reused)', async () => {
    let mode = 'length';
    const upstream = await raw((_request, socket) => {
      if (mode === 'length') void trickle(socket, 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{"n":1}');
      else socket.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"n":2}');
    });
    expect(await (await send(`${upstream.url}/mcp`, { method: 'POST', body: '{}' })).json()).toEqual({ n: 1 });
    mode = 'close';
    expect(await (await send(`${upstream.url}/mcp`, { method: 'POST', body: '{}' })).json()).toEqual({ n: 2 });
    expect(await (await send(`${upstream.url}/mcp`, { method: 'POST', body: '{}' })).json()).toEqual({ n: 2 });
    // The first connection was reused once; the close-delimited answer used it up, so the third opened another.
    expect(upstream.sockets.size).toBe(2);
  });

  it('opens a new connection when the upstream closed an idle one, or said Connection: close', async () => {
    const upstream = await raw((request, socket) => {
      const close = request.includes('x-close: 1');
      socket.write(
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n${close ? 'Connection: close\r\n' : ''}\r\n{}`,
      );
      if (close) socket.end();
    });
    await (await send(`${upstream.url}/mcp`, { method: 'POST', body: '{}' })).text();
    upstream.sockets.forEach((socket) => socket.end());
    await new Promise((resolve) => setTimeout(resolve, 50));
    await (await send(`${upstream.url}/mcp`, { method: 'POST', headers: { 'x-close': '1' }, body: '{}' })).text();
    await (await send(`${upstream.url}/mcp`, { method: 'POST', body: '{}' })).text();
    expect(upstream.sockets.size).toBe(3);
  });

  it('refuses a header that could split the request, and fails a malformed answer as a connection error', async () => {
    const upstream = await raw((_request, socket) => socket.write('HTTP/1.1 2OO OK\r\n\r\n'));
    await expect(send(`${upstream.url}/mcp`, { method: 'POST', headers: { 'x-a': 'v\r\nx-b: w' }, body: '{}' })).rejects.toThrow(TypeError);
    await expect(send(`${upstream.url}/mcp`, { method: 'POST', headers: { 'x a': 'v' }, body: '{}' })).rejects.toThrow(TypeError);
    expect(upstream.requests).toHaveLength(0);
    const malformed = await send(`${upstream.url}/mcp`, { method: 'POST', body: '{}' }).catch((error: unknown) => error);
    expect(malformed).toBeInstanceOf(TypeError);
    expect((malformed as TypeError).message).toBe('fetch failed');
  });

  it('errors an event stream the upstream cuts short, and aborts one with the signal', async () => {
    const upstream = await raw((request, socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n6\r\ndata: \r\n');
      if (request.includes('x-cut: 1')) setTimeout(() => socket.destroy(), 20);
    });
    const cut = await send(`${upstream.url}/mcp`, { method: 'POST', headers: { 'x-cut': '1' }, body: '{}' });
    await expect(cut.text()).rejects.toThrow();

    const abort = new AbortController();
    const aborted = await send(`${upstream.url}/mcp`, { method: 'POST', body: '{}', signal: abort.signal });
    const reader = aborted.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('data: ');
    const reason = new Error('cancelled');
    abort.abort(reason);
    await expect(reader.read()).rejects.toBe(reason);
  });
});
