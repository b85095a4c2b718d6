import { CALL_MARK, CALL_MARK_HEADER, callStreamFetch } from './call-streams';
import { loopbackServer } from './loopback-server.test-helpers';
import { upstreamFetch } from './upstream-fetch';

/** A loopback server answering every request with `answer`. */
const server = (answer: { type: string; body: string }) =>
  loopbackServer((_req, res) => res.writeHead(200, { 'content-type': answer.type }).end(answer.body));

describe('callStreamFetch (which agent request an upstream stream belongs to)', () => {
  const send = callStreamFetch(upstreamFetch());
  let upstream: Awaited<ReturnType<typeof server>> | undefined;
  afterEach(async () => upstream?.close());

  const request = (mark?: string): RequestInit => {
    const headers = new Headers({ 'content-type': 'application/json' });
    if (mark) headers.set(CALL_MARK_HEADER, mark);
    return { method: 'POST', headers, body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}' };
  };

  it('takes the mark header out before the request leaves and sends the body as the SDK wrote it', async () => {
    upstream = await server({ type: 'application/json', body: '{"jsonrpc":"2.0","id":1,"result":{}}' });
    const response = await send(`${upstream.url}/mcp`, request('m-1'));

    expect(await response.json()).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
    expect(upstream.seen[0].headers[CALL_MARK_HEADER]).toBeUndefined();
    expect(upstream.seen[0].body).toBe('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}');
  });

  it("writes the mark into the _meta of the requests and notifications on the marked request's event stream, and only those", async () => {
    const events = [
      'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"hi","_meta":{"a":1}}}',
      'data: {"jsonrpc":"2.0","id":7,"method":"elicitation/create","params":{"message":"?"}}',
      'id: 3\ndata: {"jsonrpc":"2.0","id":1,"result":{"content":[]}}',
    ];
    upstream = await server({ type: 'text/event-stream', body: events.map((event) => `${event}\n\n`).join('') });

    const marked = await (await send(`${upstream.url}/mcp`, request('m-2'))).text();
    const lines = marked.split('\n').filter((line) => line.startsWith('data:'));
    const messages = lines.map((line) => JSON.parse(line.slice(line.startsWith('data: ') ? 6 : 5)) as Record<string, any>);
    expect(messages[0].params._meta).toEqual({ a: 1, [CALL_MARK]: 'm-2' });
    expect(messages[0].params.data).toBe('hi');
    expect(messages[1].params._meta).toEqual({ [CALL_MARK]: 'm-2' });
    // The response itself passes as it came, its event id and type too.
    expect(messages[2]).toEqual({ jsonrpc: '2.0', id: 1, result: { content: [] } });
    expect(marked).toContain('event: message');
    expect(marked).toContain('id: 3');

    const unmarked = await (await send(`${upstream.url}/mcp`, request())).text();
    expect(unmarked).toBe(events.map((event) => `${event}\n\n`).join(''));
  });
});
