import { createMcpHandler, ProtocolError, ProtocolErrorCode, Server } from '@modelcontextprotocol/server';
import { answerJsonDirectly, JsonAnswer } from './json-answer';

const VERSION = '2026-07-28';

/** A 2026-07-28 tools/call as a client posts it (envelope in `_meta`, the standard headers). */
function toolCall(name: string, id: number | string = 7): { request: Request; body: unknown } {
  const body = {
    jsonrpc: '2.0',
    id,
    method: 'tools/call',
    params: {
      name,
      arguments: { message: 'hi' },
      _meta: {
        'io.modelcontextprotocol/protocolVersion': VERSION,
        'io.modelcontextprotocol/clientInfo': { name: 'spec', version: '1.0.0' },
        'io.modelcontextprotocol/clientCapabilities': {},
      },
    },
  };
  const request = new Request('http://localhost/mcp', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': VERSION,
      'mcp-method': 'tools/call',
      'mcp-name': name,
    },
    body: JSON.stringify(body),
  });
  return { request, body };
}

/** The SDK's handler over a plain Server whose tools answer, fail or notify first; with or without answerJsonDirectly. */
function handler(direct: boolean) {
  return createMcpHandler(
    () => {
      const server = new Server({ name: 'spec', version: '1.0.0' }, { capabilities: { tools: {}, logging: {} } });
      server.setRequestHandler('tools/list', async () => ({ tools: [] }));
      server.setRequestHandler('tools/call', async (request, ctx) => {
        if (request.params.name === 'fails') throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Unknown tool: fails');
        if (request.params.name === 'notifies') {
          await ctx.mcpReq.notify({ method: 'notifications/message', params: { level: 'info', data: 'working' } });
        }
        return { content: [{ type: 'text', text: JSON.stringify({ echoed: 'hi ✓' }) }], structuredContent: { echoed: 'hi ✓' } };
      });
      if (direct) answerJsonDirectly(server);
      return server;
    },
    { legacy: 'reject', responseMode: 'auto' },
  );
}

async function answerOf(direct: boolean, name: string): Promise<Response | JsonAnswer> {
  const { request, body } = toolCall(name);
  return handler(direct).fetch(request, { parsedBody: body });
}

describe('answerJsonDirectly', () => {
  it('answers a whole JSON result as a JsonAnswer with the bytes Response.json would have had', async () => {
    const sdk = (await answerOf(false, 'echo')) as Response;
    const direct = await answerOf(true, 'echo');

    expect(direct).toBeInstanceOf(JsonAnswer);
    const answer = direct as JsonAnswer;
    expect(answer.status).toBe(sdk.status);
    expect(sdk.headers.get('content-type')).toBe('application/json');
    expect(answer.body).toBe(await sdk.text());
    expect(JSON.parse(answer.body)).toMatchObject({ jsonrpc: '2.0', id: 7, result: { structuredContent: { echoed: 'hi ✓' } } });
  });

  it('leaves error answers to the SDK (status and body unchanged)', async () => {
    const sdk = (await answerOf(false, 'fails')) as Response;
    const direct = await answerOf(true, 'fails');

    expect(direct).toBeInstanceOf(Response);
    expect((direct as Response).status).toBe(sdk.status);
    expect(await (direct as Response).text()).toBe(await sdk.text());
  });

  it('leaves a call that streams a notification first to the SDK (an SSE answer)', async () => {
    const direct = (await answerOf(true, 'notifies')) as Response;

    expect(direct).toBeInstanceOf(Response);
    expect(direct.headers.get('content-type')).toBe('text/event-stream');
    const text = await direct.text();
    expect(text).toContain('notifications/message');
    expect(text).toContain('"result"');
  });

  it('changes nothing for a server on another transport', async () => {
    const server = new Server({ name: 'spec', version: '1.0.0' }, { capabilities: { tools: {} } });
    answerJsonDirectly(server);
    const sent: unknown[] = [];
    const transport = {
      start: async () => undefined,
      close: async () => undefined,
      send: async (message: unknown) => void sent.push(message),
    };
    const send = transport.send;
    await server.connect(transport);

    expect(transport.send).toBe(send);
  });
});
