import { AsyncLocalStorage } from 'node:async_hooks';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { FastifyInstance } from 'fastify';
import { installBodyParserFastPath } from './body-parser-fast-path';

const ContentTypeParser = require('fastify/lib/content-type-parser') as { prototype: { run: unknown } };
const fastifys = ContentTypeParser.prototype.run;
const installed = installBodyParserFastPath();
const ours = ContentTypeParser.prototype.run;

interface Answer {
  status: number;
  body: string;
  connection: string | undefined;
}

const store = new AsyncLocalStorage<{ id: string }>();

/** An app with the parsers the server uses: JSON as a string (REST), anything as a bounded string (MCP), and an async one. */
async function app(): Promise<FastifyInstance> {
  const fastify = Fastify();
  fastify.addHook('onRequest', (request, _reply, done) => store.run({ id: request.id }, done));
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 64 }, (_request, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(Object.assign(new Error('bad json'), { statusCode: 400 }), undefined);
    }
  });
  fastify.addContentTypeParser('text/plain', { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, `bytes:${(body as Buffer).length}`),
  );
  fastify.addContentTypeParser('application/x-async', async (_request: unknown, payload: NodeJS.ReadableStream) => {
    let text = '';
    for await (const chunk of payload) text += String(chunk);
    if (text === 'fail') throw Object.assign(new Error('async refused'), { statusCode: 422 });
    return `async:${text}`;
  });
  fastify.post('/echo', async (request) => ({ body: request.body, sameContext: store.getStore()?.id === request.id }));
  await fastify.listen({ port: 0, host: '127.0.0.1' });
  return fastify;
}

/** A POST whose body arrives in two writes 20 ms apart (so the parser finishes in a later event than the request's). */
function post(fastify: FastifyInstance, contentType: string | undefined, body: string): Promise<Answer> {
  const { port } = fastify.server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/echo',
        headers: { ...(contentType ? { 'content-type': contentType } : {}), 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, body: text, connection: res.headers.connection }));
      },
    );
    req.on('error', reject);
    const half = Math.floor(body.length / 2);
    req.write(body.slice(0, half));
    setTimeout(() => req.end(body.slice(half)), 20);
  });
}

const cases: Array<[string, string | undefined, string]> = [
  ['JSON', 'application/json', '{"a":[1,2,3]}'],
  ['invalid JSON', 'application/json', '{"a":'],
  ['a body over the limit', 'application/json', JSON.stringify({ a: 'x'.repeat(100) })],
  ['a buffer', 'text/plain', 'hello'],
  ['an async parser', 'application/x-async', 'hello'],
  ['an async parser that throws', 'application/x-async', 'fail'],
  ['no parser for the type', 'application/unknown', 'hello'],
  ['no content type', undefined, 'hello'],
];

describe('installBodyParserFastPath', () => {
  let fastify: FastifyInstance;
  beforeAll(async () => {
    fastify = await app();
  });
  afterAll(async () => {
    ContentTypeParser.prototype.run = ours;
    await fastify.close();
  });

  it('replaces the content-type parser run of the installed Fastify (a new Fastify: check the replacement against its run, then update the hash)', () => {
    expect(installed).toBe(true);
    expect(ours).not.toBe(fastifys);
    expect(installBodyParserFastPath()).toBe(true);
  });

  it.each(cases)('answers %s as Fastify does', async (_name, contentType, body) => {
    ContentTypeParser.prototype.run = fastifys;
    const expected = await post(fastify, contentType, body);
    ContentTypeParser.prototype.run = ours;
    const actual = await post(fastify, contentType, body);
    expect(actual).toEqual(expected);
  });

  it('hands the handler the parsed body in the request async context', async () => {
    ContentTypeParser.prototype.run = ours;
    expect(JSON.parse((await post(fastify, 'application/json', '{"a":1}')).body)).toEqual({ body: { a: 1 }, sameContext: true });
    expect(JSON.parse((await post(fastify, 'application/x-async', 'x')).body)).toEqual({ body: 'async:x', sameContext: true });
  });
});
