import { AsyncResource, AsyncResourceOptions } from 'node:async_hooks';
import { createHash } from 'node:crypto';

/** The parts of a content-type parser that `run` reads (fastify/lib/content-type-parser.js). */
interface Parser {
  asString?: boolean;
  asBuffer?: boolean;
  fn(request: unknown, payload: unknown, done: Done): unknown;
}
type Done = (error: unknown, body?: unknown) => void;
type Run = (this: ParserInternals, contentType: string, handler: Handler, request: Request, reply: Reply) => void;
type Handler = (request: Request, reply: Reply) => void;
type Request = Record<string | symbol, unknown> & { body?: unknown };
type Reply = Record<string | symbol, unknown> & { header(name: string, value: string): unknown; send(payload: unknown): unknown };
interface ParserInternals {
  getParser(contentType: string): Parser | undefined;
  run: Run;
}

/** Fastify's internals this replacement reads; it ships no types for them. */
const ContentTypeParser = require('fastify/lib/content-type-parser') as { prototype: ParserInternals } & Record<symbol, unknown>;
const symbols = require('fastify/lib/symbols') as Record<string, symbol>;

/**
 * The SHA-256 of the source of Fastify's ContentTypeParser.prototype.run that `run` below repeats
 * (fastify 5.11.3). Another source (an upgrade) keeps Fastify's own, and body-parser-fast-path.spec fails,
 * to have the replacement checked against it again.
 */
export const FASTIFY_RUN_SOURCE_SHA256 = 'dcc6f8ac33add28c8db4bd1e91c424c581ab38af8fac3d4fbfc28f2d66b07aa7';

/**
 * Fastify runs a request's body parser in an AsyncResource of the request (its async context: the
 * handler's AsyncLocalStorage stores are the request's, not those of the socket's read), and hands
 * the parser `resource.bind(onDone)`. On Node 20, each `bind` also defines the bound function's
 * deprecated `asyncResource` accessors (DEP0172) through util.deprecate, which gives each wrapper a
 * prototype of its own: about 50 µs of CPU per bind in a micro-benchmark, on every request with a
 * body (2–3 % of an MCP call's CPU in P3's profile). This is Fastify's `run`, the same steps in the
 * same order, with the callback calling `resource.runInAsyncScope(onDone, …)` itself (what the bound
 * function does, as Fastify 4 did). Installed only over the exact source it repeats; true when it is.
 */
export function installBodyParserFastPath(): boolean {
  const proto = ContentTypeParser.prototype;
  if (proto.run === run) return true;
  const internals = ContentTypeParser[symbols.kTestInternals] as { rawBody?: unknown } | undefined;
  if (
    typeof proto.run !== 'function' ||
    createHash('sha256').update(proto.run.toString()).digest('hex') !== FASTIFY_RUN_SOURCE_SHA256 ||
    typeof internals?.rawBody !== 'function' ||
    !symbols.kRouteContext ||
    !symbols.kRequestPayloadStream ||
    !symbols.kReplyIsError
  )
    return false;
  original = proto.run;
  rawBody = internals.rawBody as RawBody;
  proto.run = run;
  return true;
}

type RawBody = (request: Request, reply: Reply, options: unknown, parser: Parser, done: Done) => void;
let original: Run;
let rawBody: RawBody;

const run: Run = function (contentType, handler, request, reply) {
  const parser = this.getParser(contentType);
  // No parser: Fastify's answer (a 415, or the 404 handler), which takes no resource.
  if (parser === undefined) return original.call(this, contentType, handler, request, reply);

  // As Fastify: the request in the options' place (it has neither option, so both keep their defaults).
  const resource = new AsyncResource('content-type-parser:run', request as AsyncResourceOptions);
  const done: Done = (error, body) => resource.runInAsyncScope(onDone, undefined, error, body);

  if (parser.asString === true || parser.asBuffer === true) {
    rawBody(request, reply, (reply[symbols.kRouteContext] as { _parserOptions: unknown })._parserOptions, parser, done);
    return;
  }

  const result = parser.fn(request, request[symbols.kRequestPayloadStream], done) as { then?: unknown } | undefined;
  if (result && typeof result.then === 'function') {
    (result as Promise<unknown>).then((body) => done(null, body), done);
  }

  function onDone(error: unknown, body: unknown): void {
    resource.emitDestroy();
    if (error != null) {
      // We must close the connection as the client may send more data (Fastify's comment).
      reply.header('connection', 'close');
      reply[symbols.kReplyIsError] = true;
      reply.send(error);
      return;
    }
    request.body = body;
    handler(request, reply);
  }
};
