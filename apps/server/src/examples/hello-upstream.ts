import { ProtocolError, ProtocolErrorCode, Server, Tool } from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';

/**
 * A minimal stdio MCP server shipped in the image (dist/apps/server/src/examples/hello-upstream.js,
 * production dependencies only), so the README's federation example runs as written inside the
 * container: `MCP_UPSTREAMS_FILE` naming it with `/usr/local/bin/node`. Replace it with your own.
 */
const HELLO: Tool = {
  name: 'hello',
  title: 'Hello',
  description: 'Greets someone by name',
  inputSchema: {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 100 } },
    required: ['name'],
    additionalProperties: false,
  },
  outputSchema: { type: 'object', properties: { greeting: { type: 'string' } }, required: ['greeting'], additionalProperties: false },
  annotations: { readOnlyHint: true, openWorldHint: false },
};

serveStdio(() => {
  const server = new Server({ name: 'hello-upstream', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler('tools/list', async () => ({ tools: [HELLO] }));
  server.setRequestHandler('tools/call', async (request) => {
    if (request.params.name !== HELLO.name) throw new ProtocolError(ProtocolErrorCode.InvalidParams, `Unknown tool ${request.params.name}`);
    const greeting = `Hello, ${String(request.params.arguments?.name ?? 'world')}!`;
    return { content: [{ type: 'text', text: greeting }], structuredContent: { greeting } };
  });
  return server;
});
