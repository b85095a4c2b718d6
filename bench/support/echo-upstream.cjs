'use strict';
// The upstream of P4, P5 and P9, in a process of its own: an official-SDK MCP server
// (createMcpHandler, both protocol eras, stateless) with one trivial tool, `echo`, and, when
// given a count, that many more (`t0001`, `t0002`, ... each with its own small input schema),
// for a large federated catalogue; and for P9 one prompt (`greeting`, argument `name`) and one
// static resource (`bench://doc`, 1 KB of text). Prints its port on stdout once it listens on
// 127.0.0.1, and exits on SIGTERM or when its stdin closes (the bench that started it is gone).
//   node echo-upstream.cjs [extra tools, default 0]
const { createServer } = require('node:http');
const { createMcpHandler, fromJsonSchema, McpServer } = require('@modelcontextprotocol/server');
const { toNodeHandler } = require('@modelcontextprotocol/node');

const extraTools = Number(process.argv[2] ?? 0);
const inputSchema = fromJsonSchema({
  type: 'object',
  additionalProperties: false,
  required: ['message'],
  properties: { message: { type: 'string', maxLength: 10000 } },
});
const outputSchema = fromJsonSchema({
  type: 'object',
  additionalProperties: false,
  required: ['message'],
  properties: { message: { type: 'string' } },
});
const greetingArgs = fromJsonSchema({
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: { type: 'string', maxLength: 200, description: 'Who to greet' } },
});
const DOC_URI = 'bench://doc';
const DOC = 'The quick brown fox jumps over the lazy dog. '.repeat(23).trim();
const extra = Array.from({ length: extraTools }, (_, i) => {
  const name = `t${String(i + 1).padStart(4, '0')}`;
  return {
    name,
    description: `Bench tool ${name}: looks up a record by key and returns it with its metadata`,
    inputSchema: fromJsonSchema({
      type: 'object',
      additionalProperties: false,
      required: ['key'],
      properties: {
        key: { type: 'string', maxLength: 200, description: 'The record key' },
        limit: { type: 'integer', minimum: 1, maximum: 100 },
      },
    }),
  };
});
const handler = createMcpHandler(() => {
  const server = new McpServer({ name: 'bench-echo-upstream', version: '1.0.0' });
  server.registerTool('echo', { description: 'Returns the given message', inputSchema, outputSchema }, async (args) => {
    const result = { message: args.message };
    return { content: [{ type: 'text', text: JSON.stringify(result) }], structuredContent: result };
  });
  server.registerPrompt('greeting', { description: 'Greets someone by name', argsSchema: greetingArgs }, async (args) => ({
    messages: [{ role: 'user', content: { type: 'text', text: `Say hello to ${args.name}` } }],
  }));
  server.registerResource('doc', DOC_URI, { description: 'A small text document', mimeType: 'text/plain' }, async () => ({
    contents: [{ uri: DOC_URI, mimeType: 'text/plain', text: DOC }],
  }));
  for (const tool of extra) {
    server.registerTool(tool.name, { description: tool.description, inputSchema: tool.inputSchema }, async (args) => ({
      content: [{ type: 'text', text: JSON.stringify({ key: args.key }) }],
    }));
  }
  return server;
});
const server = createServer(toNodeHandler(handler));
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
// The bench holds our stdin open; when it goes away (even killed), so do we.
process.stdin.on('end', stop);
process.stdin.resume();
