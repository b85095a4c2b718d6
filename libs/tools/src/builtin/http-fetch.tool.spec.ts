import Ajv from 'ajv';
import { createServer, IncomingMessage, RequestOptions, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { HttpFetchSettings, HttpFetchTool, HttpTransport, nodeHttpTransport } from './http-fetch.tool';
import { ctx, failure } from './tool-call.test-helpers';

const MAX_BYTES = 1024;

interface TestServer {
  server: Server;
  port: number;
  connections: number;
  requests: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }>;
  /** URLs of requests whose connection closed before their response was complete. */
  abandoned: string[];
}

async function startServer(
  handler: (req: IncomingMessage, res: ServerResponse, body: string, self: TestServer) => void,
): Promise<TestServer> {
  const self: TestServer = { server: undefined as unknown as Server, port: 0, connections: 0, requests: [], abandoned: [] };
  self.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      self.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.on('close', () => {
        if (!res.writableFinished) self.abandoned.push(req.url ?? '');
      });
      handler(req, res, body, self);
    });
  });
  self.server.on('connection', () => (self.connections += 1));
  await new Promise<void>((resolve) => self.server.listen(0, '127.0.0.1', resolve));
  self.port = (self.server.address() as AddressInfo).port;
  return self;
}

async function stopServer(server: TestServer): Promise<void> {
  server.server.closeAllConnections();
  await new Promise<void>((resolve) => server.server.close(() => resolve()));
}

/** A transport that fails the test if anything tries to open a connection. */
function refusingTransport(): HttpTransport & { calls: URL[] } {
  const calls: URL[] = [];
  const transport = Object.assign(
    (url: URL): never => {
      calls.push(url);
      throw new Error(`no connection may be opened, but one was to ${url.href}`);
    },
    { calls },
  );
  return transport;
}

/** The real transport, but refusing anything that is not a loopback test server. */
function loopbackOnlyTransport(): HttpTransport & { calls: URL[] } {
  const calls: URL[] = [];
  const transport = ((url: URL, options: RequestOptions) => {
    calls.push(url);
    if (!['127.0.0.1', 'localhost'].includes(url.hostname)) throw new Error(`test transport refuses ${url.href}`);
    return nodeHttpTransport(url, options);
  }) as HttpTransport & { calls: URL[] };
  transport.calls = calls;
  return transport;
}

describe('HttpFetchTool', () => {
  let allowed: TestServer;
  /** Must never be reached: every refusal test ends by checking it saw no connection at all. */
  let forbidden: TestServer;
  const ajv = new Ajv({ allErrors: true, strict: true });

  beforeAll(async () => {
    forbidden = await startServer((_req, res) => res.end('you should not see this'));
    allowed = await startServer((req, res, body) => {
      const url = new URL(req.url ?? '/', 'http://test');
      switch (url.pathname) {
        case '/text':
          res.setHeader('content-type', 'text/plain; charset=utf-8');
          res.end('héllo');
          return;
        case '/echo':
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ method: req.method, body, headers: req.headers }));
          return;
        case '/binary':
          res.end(Buffer.from([0xff, 0x00, 0xfe]));
          return;
        case '/declared-large':
          res.setHeader('content-length', String(MAX_BYTES * 10));
          res.write('x'.repeat(100));
          return; // never finishes: the tool must not wait for it
        case '/streamed-large': {
          // No content-length: the limit must be enforced while reading.
          let sent = 0;
          const timer = setInterval(() => {
            if (res.destroyed || sent > MAX_BYTES * 50) {
              clearInterval(timer);
              res.end();
              return;
            }
            res.write('y'.repeat(256));
            sent += 256;
          }, 2);
          return;
        }
        case '/slow':
          setTimeout(() => (res.destroyed ? undefined : res.end('late')), 5000).unref();
          return;
        case '/redirect':
          res.statusCode = Number(url.searchParams.get('status') ?? 302);
          res.setHeader('location', url.searchParams.get('to') ?? '/text');
          res.end();
          return;
        case '/loop': {
          const n = Number(url.searchParams.get('n') ?? 0);
          res.statusCode = 302;
          res.setHeader('location', `/loop?n=${n + 1}`);
          res.end();
          return;
        }
        default:
          res.statusCode = 404;
          res.end('not found');
      }
    });
  });

  afterAll(async () => {
    await stopServer(allowed);
    await stopServer(forbidden);
  });

  beforeEach(() => {
    allowed.requests = [];
  });

  afterEach(() => {
    expect(forbidden.connections).toBe(0);
    expect(forbidden.requests).toEqual([]);
  });

  function fetchTool(overrides: Partial<HttpFetchSettings> = {}, transport?: HttpTransport): HttpFetchTool {
    return new HttpFetchTool(
      {
        allowedHosts: ['127.0.0.1', 'localhost', '[::1]', '[::ffff:7f00:1]', '0.0.0.0'],
        maxBytes: MAX_BYTES,
        timeoutMs: 3000,
        allowPrivate: 'always',
        ...overrides,
      },
      transport,
    );
  }
  const at = (server: TestServer, path: string) => `http://127.0.0.1:${server.port}${path}`;

  describe('reaching an allowed server (loopback allowed for the test)', () => {
    it('GETs text and returns status, headers and body matching the output schema', async () => {
      const tool = fetchTool();
      const output = (await tool.execute({ url: at(allowed, '/text') }, ctx())) as Record<string, unknown>;
      const validate = ajv.compile(tool.definition.outputSchema);
      expect(validate(output)).toBe(true);
      expect(output).toMatchObject({
        url: at(allowed, '/text'),
        status: 200,
        statusText: 'OK',
        body: 'héllo',
        bodyEncoding: 'utf-8',
        bytes: Buffer.byteLength('héllo'),
        redirects: [],
      });
      expect((output.headers as Record<string, string>)['content-type']).toBe('text/plain; charset=utf-8');
      expect(allowed.requests[0].headers['accept-encoding']).toBe('identity');
    });

    it("POSTs a body with the caller's headers", async () => {
      const output = (await fetchTool().execute(
        { url: at(allowed, '/echo'), method: 'POST', body: '{"q":1}', headers: { 'Content-Type': 'application/json', 'X-Trace': 'abc' } },
        ctx(),
      )) as { body: string };
      const echoed = JSON.parse(output.body);
      expect(echoed).toMatchObject({ method: 'POST', body: '{"q":1}' });
      expect(echoed.headers).toMatchObject({ 'content-type': 'application/json', 'x-trace': 'abc' });
    });

    it('returns binary bodies as base64 and error statuses as results', async () => {
      expect(await fetchTool().execute({ url: at(allowed, '/binary') }, ctx())).toMatchObject({
        body: '/wD+',
        bodyEncoding: 'base64',
        bytes: 3,
      });
      expect(await fetchTool().execute({ url: at(allowed, '/missing') }, ctx())).toMatchObject({ status: 404, body: 'not found' });
    });

    it('resolves host names itself and connects to the vetted address', async () => {
      let seen: unknown;
      const transport: HttpTransport = (url, options) => {
        // Whatever name the socket asks for, the pinned lookup answers with the vetted address.
        options.lookup!('rebound.example', { all: true }, ((_e: unknown, addresses: unknown) => (seen = addresses)) as never);
        return nodeHttpTransport(url, options);
      };
      const output = await fetchTool({}, transport).execute({ url: `http://localhost:${allowed.port}/text` }, ctx());
      expect(output).toMatchObject({ status: 200, body: 'héllo' });
      expect(seen).toEqual([{ address: '127.0.0.1', family: 4 }]);
    });

    it('follows redirects, re-vetting each hop, and reports them', async () => {
      const output = await fetchTool().execute(
        { url: at(allowed, `/redirect?to=${encodeURIComponent(`http://localhost:${allowed.port}/text`)}`) },
        ctx(),
      );
      expect(output).toMatchObject({
        status: 200,
        body: 'héllo',
        url: `http://localhost:${allowed.port}/text`,
        redirects: [`http://localhost:${allowed.port}/text`],
      });
      const notFollowed = await fetchTool().execute({ url: at(allowed, '/redirect?to=/text'), followRedirects: false }, ctx());
      expect(notFollowed).toMatchObject({ status: 302, redirects: [] });
    });

    it('turns a POST into a GET on 303 and drops credentials when the origin changes', async () => {
      const to = encodeURIComponent(`http://localhost:${allowed.port}/echo`);
      const output = (await fetchTool().execute(
        {
          url: at(allowed, `/redirect?status=303&to=${to}`),
          method: 'POST',
          body: 'data',
          headers: { Authorization: 'Bearer secret', 'X-Keep': '1' },
        },
        ctx(),
      )) as { body: string };
      const echoed = JSON.parse(output.body);
      expect(echoed.method).toBe('GET');
      expect(echoed.body).toBe('');
      expect(echoed.headers.authorization).toBeUndefined();
      expect(echoed.headers['x-keep']).toBe('1');
      expect(allowed.requests[0].headers.authorization).toBe('Bearer secret');
    });

    it('stops after five redirects', async () => {
      const error = await failure(fetchTool().execute({ url: at(allowed, '/loop') }, ctx()));
      expect(error.code).toBe('TOO_MANY_REDIRECTS');
      expect(allowed.requests).toHaveLength(6);
    });
  });

  describe('limits', () => {
    it('refuses a response whose declared length is over the limit without reading it', async () => {
      // The server never finishes that body: answering at all shows the tool did not wait for it.
      expect((await failure(fetchTool().execute({ url: at(allowed, '/declared-large') }, ctx()))).code).toBe('TOO_LARGE');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(allowed.abandoned).toContain('/declared-large');
    });

    it('stops reading a streamed response past the limit', async () => {
      expect((await failure(fetchTool().execute({ url: at(allowed, '/streamed-large') }, ctx()))).code).toBe('TOO_LARGE');
    });

    it('times out a slow server and closes the connection', async () => {
      const error = await failure(fetchTool().execute({ url: at(allowed, '/slow?case=timeout'), timeoutMs: 200 }, ctx()));
      expect(error.code).toBe('TIMEOUT');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(allowed.abandoned).toContain('/slow?case=timeout');
    });

    it('honours the configured timeout when the caller asks for none', async () => {
      const error = await failure(fetchTool({ timeoutMs: 150 }).execute({ url: at(allowed, '/slow') }, ctx()));
      expect(error.code).toBe('TIMEOUT');
    });

    it('stops when the call is aborted', async () => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const error = await failure(fetchTool().execute({ url: at(allowed, '/slow?case=abort') }, ctx(controller.signal)));
      expect(error.code).toBe('ABORTED');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(allowed.abandoned).toContain('/slow?case=abort');
    });

    it('refuses headers that belong to the connection and bodies on GET', async () => {
      for (const name of ['Host', 'Content-Length', 'Transfer-Encoding', 'Connection', 'Proxy-Authorization', 'Accept-Encoding']) {
        expect((await failure(fetchTool().execute({ url: at(allowed, '/text'), headers: { [name]: 'x' } }, ctx()))).code).toBe(
          'INVALID_INPUT',
        );
      }
      expect((await failure(fetchTool().execute({ url: at(allowed, '/text'), body: 'x' }, ctx()))).code).toBe('INVALID_INPUT');
      expect(allowed.requests).toEqual([]);
    });
  });

  describe('refusals', () => {
    it('refuses hosts not on the allow-list before resolving them', async () => {
      const transport = refusingTransport();
      const tool = fetchTool({ allowedHosts: ['api.example.com', '*.example.org'] }, transport);
      for (const url of [
        'http://example.com/',
        'http://evil.com/?x=api.example.com',
        'http://example.org/',
        `http://127.0.0.1:${forbidden.port}/`,
        'http://api.example.com.evil.com/',
      ]) {
        expect([url, (await failure(tool.execute({ url }, ctx()))).code]).toEqual([url, 'HOST_NOT_ALLOWED']);
      }
      expect(
        (await failure(fetchTool({ allowedHosts: [] }, transport).execute({ url: `http://localhost:${forbidden.port}/` }, ctx()))).code,
      ).toBe('HOST_NOT_ALLOWED');
      expect(transport.calls).toEqual([]);
    });

    it('refuses other protocols and URLs with credentials', async () => {
      const transport = refusingTransport();
      for (const url of [
        'ftp://127.0.0.1/',
        'file:///etc/passwd',
        'gopher://127.0.0.1:70/',
        'data:text/plain,hi',
        `http://user:pw@127.0.0.1:${forbidden.port}/`,
        'not a url',
      ]) {
        expect([url, (await failure(fetchTool({}, transport).execute({ url }, ctx()))).code]).toEqual([url, 'INVALID_INPUT']);
      }
      expect(transport.calls).toEqual([]);
    });

    it.each([
      ['loopback literal', (p: number) => `http://127.0.0.1:${p}/`],
      ['localhost (resolves to loopback)', (p: number) => `http://localhost:${p}/`],
      ['IPv6 loopback', (p: number) => `http://[::1]:${p}/`],
      ['IPv4-mapped IPv6 loopback', (p: number) => `http://[::ffff:127.0.0.1]:${p}/`],
      ['decimal loopback', (p: number) => `http://2130706433:${p}/`],
      ['hex shorthand loopback', (p: number) => `http://0x7f.1:${p}/`],
      ['short loopback', (p: number) => `http://127.1:${p}/`],
      ['unspecified address', (p: number) => `http://0.0.0.0:${p}/`],
    ])('refuses %s and never reaches the server behind it', async (_label, url) => {
      const error = await failure(fetchTool({ allowPrivate: 'never' }).execute({ url: url(forbidden.port) }, ctx()));
      expect(error.code).toBe('FORBIDDEN_ADDRESS');
    });

    it.each([
      ['10.0.0.1', 'private'],
      ['172.16.5.4', 'private'],
      ['192.168.1.1', 'private'],
      ['100.64.0.1', 'cgnat'],
      ['169.254.1.1', 'link-local'],
      ['169.254.169.254', 'metadata'],
      ['224.0.0.1', 'multicast'],
      ['255.255.255.255', 'reserved'],
      ['[fd00:ec2::254]', 'metadata'],
      ['[fd12::1]', 'unique-local'],
      ['[fe80::1]', 'link-local'],
      ['[ff02::1]', 'multicast'],
      ['[::]', 'unspecified'],
      ['[::ffff:169.254.169.254]', 'metadata'],
      ['[::ffff:10.0.0.1]', 'private'],
      ['[64:ff9b::a9fe:a9fe]', 'metadata'],
      ['[2002:a00:1::1]', 'private'],
    ])('refuses %s (%s) without opening a connection', async (host, cls) => {
      const normalised = new URL(`http://${host}/`).hostname;
      const transport = refusingTransport();
      const error = await failure(
        fetchTool({ allowedHosts: [normalised], allowPrivate: 'never' }, transport).execute(
          { url: `http://${host}/latest/meta-data/` },
          ctx(),
        ),
      );
      expect(error.code).toBe('FORBIDDEN_ADDRESS');
      expect(error.message).toContain(cls);
      expect(transport.calls).toEqual([]);
    });

    it('refuses metadata addresses even when private addresses are allowed', async () => {
      const transport = refusingTransport();
      for (const host of ['169.254.169.254', '[fd00:ec2::254]', '[::ffff:a9fe:a9fe]', '100.100.100.200']) {
        const hostname = new URL(`http://${host}/`).hostname;
        const error = await failure(
          fetchTool({ allowedHosts: [hostname], allowPrivate: 'always' }, transport).execute({ url: `http://${host}/` }, ctx()),
        );
        expect(error.code).toBe('FORBIDDEN_ADDRESS');
      }
      expect(transport.calls).toEqual([]);
    });

    describe('on redirects (private allowed for the first hop only)', () => {
      it.each([
        ['a loopback literal', (p: number) => `http://127.0.0.1:${p}/`, 'FORBIDDEN_ADDRESS'],
        ['localhost', (p: number) => `http://localhost:${p}/`, 'FORBIDDEN_ADDRESS'],
        ['an IPv4-mapped loopback', (p: number) => `http://[::ffff:127.0.0.1]:${p}/`, 'FORBIDDEN_ADDRESS'],
        ['a decimal loopback', (p: number) => `http://2130706433:${p}/`, 'FORBIDDEN_ADDRESS'],
        ['the metadata address', () => 'http://169.254.169.254/latest/meta-data/', 'FORBIDDEN_ADDRESS'],
        ['a host not on the allow-list', () => 'http://internal.example/', 'HOST_NOT_ALLOWED'],
        ['a file URL', () => 'file:///etc/passwd', 'INVALID_INPUT'],
      ])('refuses a redirect to %s', async (_label, target, code) => {
        const transport = loopbackOnlyTransport();
        const tool = fetchTool(
          { allowedHosts: ['127.0.0.1', 'localhost', '[::ffff:7f00:1]', '169.254.169.254'], allowPrivate: 'first-hop' },
          transport,
        );
        for (const status of [302, 307]) {
          const url = at(allowed, `/redirect?status=${status}&to=${encodeURIComponent(target(forbidden.port))}`);
          expect((await failure(tool.execute({ url }, ctx()))).code).toBe(code);
        }
        expect(allowed.requests).toHaveLength(2); // the first hop really happened, twice
        expect(transport.calls).toHaveLength(2);
      });
    });
  });
});
