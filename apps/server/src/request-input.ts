import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Socket } from 'node:net';
import { IncomingMessage, Server, STATUS_CODES } from 'node:http';
import {
  AppException,
  ErrorCode,
  ErrorCodeValue,
  codeForStatus,
  errorBody,
  newRequestId,
  parseJsonInput,
  traceIdFor,
  unsafeStrings,
} from '@app/core';

/**
 * JSON is the only body the REST API takes (anything else is a 415, Fastify's text/plain parser
 * included), parsed under the server's input rules: bounded depth, no NUL, no lone surrogate, no
 * prototype-polluting key (see parseJsonInput).
 */
export function installJsonParser(fastify: FastifyInstance): void {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const parsed = parseJsonInput(body as string);
    if (parsed.ok) return done(null, parsed.value);
    if (parsed.reason === 'syntax')
      return done(new AppException(ErrorCode.MALFORMED_JSON, 'Request body is not valid JSON', 400), undefined);
    done(AppException.validation(parsed.details), undefined);
  });
}

/**
 * Path parameters and query values reach guards and SQL before any DTO is validated: refuse NUL
 * (PostgreSQL rejects it in text) and lone surrogates for every route, the raw MCP ones included.
 */
export function installInputChecks(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, _reply, done) => {
    const params = unsafeStrings(request.params);
    const query = unsafeStrings(request.query);
    if (params.length === 0 && query.length === 0) return done();
    done(AppException.validation([...params, ...query]));
  });
}

/**
 * Fastify's `frameworkErrors`: the router's refusals (bad percent-encoding, a path parameter over
 * maxParamLength) answered before any route or Nest filter exists, in the contract's Error body.
 */
export function frameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
  const message =
    error.code === 'FST_ERR_BAD_URL'
      ? 'Malformed URL: invalid percent-encoding'
      : status === 414
        ? 'A path segment is too long'
        : 'Bad request';
  const traceId = traceIdFor(request.headers.traceparent);
  void reply
    .code(status)
    .header('x-request-id', request.id)
    .header('content-type', 'application/json; charset=utf-8')
    .send(
      errorBody(
        status >= 500 ? ErrorCode.INTERNAL_ERROR : codeForStatus(status),
        status >= 500 ? 'Internal server error' : message,
        [],
        request.id,
        traceId,
      ),
    );
}

const CLIENT_ERRORS: Record<string, { status: number; code: ErrorCodeValue; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, code: ErrorCode.HEADERS_TOO_LARGE, message: 'Request line and headers are too large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: ErrorCode.REQUEST_TIMEOUT, message: 'The request was not received in time' },
};

/**
 * Node's HTTP parser refuses a request (oversized head, unknown method, broken framing, timeout)
 * before Fastify sees it: answer on the socket with the Error body, then close it.
 */
export function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const known = CLIENT_ERRORS[error.code ?? ''] ?? { status: 400, code: ErrorCode.BAD_REQUEST, message: 'Malformed HTTP request' };
  answerOnSocket(socket, known.status, known.code, known.message);
  socket.destroy(error);
}

/** Node hands CONNECT to a 'connect' listener, never to Fastify; without one it drops the socket unanswered. */
export function refuseConnectMethod(server: Server): void {
  server.on('connect', (_request: IncomingMessage, socket: Socket) => {
    answerOnSocket(socket, 405, ErrorCode.METHOD_NOT_ALLOWED, 'Method CONNECT is not allowed here');
    socket.end();
  });
}

function answerOnSocket(socket: Socket, status: number, code: ErrorCodeValue, message: string): void {
  if (!socket.writable) return;
  const requestId = newRequestId();
  const body = JSON.stringify(errorBody(code, message, [], requestId, traceIdFor(undefined)));
  socket.write(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
  );
}
