'use strict';
// The upstream of bench/federated-call.bench.ts, in a process of its own: an official-SDK MCP
// server (createMcpHandler, both protocol eras, stateless) with one trivial tool, `echo`.
// Prints its port on stdout once it listens on 127.0.0.1.
const { createServer } = require('node:http');
const { createMcpHandler, fromJsonSchema, McpServer } = require('@modelcontextprotocol/server');
const { toNodeHandler } = require('@modelcontextprotocol/node');

const inputSchema = fromJsonSchema({
  type: 'object',
  additionalProperties: false,
  required: ['message'],
  properties: { message: { type: 'string', maxLength: 10000 } },
});
const outputSchema = fromJsonSchema({ type: 'object', additionalProperties: false, required: ['message'], properties: { message: { type: 'string' } } });
const handler = createMcpHandler(() => {
  const server = new McpServer({ name: 'bench-echo-upstream', version: '1.0.0' });
  server.registerTool('echo', { description: 'Returns the given message', inputSchema, outputSchema }, async (args) => {
    const result = { message: args.message };
    return { content: [{ type: 'text', text: JSON.stringify(result) }], structuredContent: result };
  });
  return server;
});
const server = createServer(toNodeHandler(handler));
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
