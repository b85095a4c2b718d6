import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RouteRegistry } from '../http/route-registry';
import { AppException, ErrorDetail } from './app.exception';
import { ErrorCode, ErrorCodeValue, codeForStatus } from './error-code';
import { isDatabaseUnavailable } from './database-errors';
import { safeErrorMessage } from '../logging/error-serializer';
import { correlate } from '../logging/correlation';

interface Rendered {
  status: number;
  code: ErrorCodeValue;
  message: string;
  details: ErrorDetail[];
  headers: Record<string, string>;
}

export interface ErrorBody {
  error: ErrorCodeValue;
  message: string;
  details: ErrorDetail[];
  timestamp: string;
  requestId: string;
  traceId?: string;
}

/** The contract's Error body; also written by the layers that answer before Nest does (see create-app). */
export function errorBody(code: ErrorCodeValue, message: string, details: ErrorDetail[], requestId: string, traceId?: string): ErrorBody {
  return { error: code, message, details, timestamp: new Date().toISOString(), requestId, traceId };
}

const UNKNOWN_ROUTE = /^Cannot [A-Z]+ /;

/**
 * The one place a failure becomes an HTTP response: every error, from a guard, a pipe, a
 * controller, Fastify's body parser or the router, leaves as the contract's Error body.
 * 5xx bodies never carry internals; the log line with the same requestId does.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('ExceptionFilter');

  constructor(private readonly routes: RouteRegistry) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const rendered = this.render(exception, request);

    if (rendered.status >= 500 && rendered.code !== ErrorCode.SERVICE_UNAVAILABLE) {
      // `err` goes through serializeError: never the driver's parameters, row or SQL.
      this.logger.error({ ...correlate(request, request.principal), err: exception, requestId: request.id }, 'Unhandled error');
    } else if (rendered.status >= 500) {
      this.logger.warn(
        { ...correlate(request, request.principal), requestId: request.id, reason: safeErrorMessage(exception) },
        'Dependency unavailable',
      );
    }
    if (reply.sent) return;

    for (const [name, value] of Object.entries(rendered.headers)) reply.header(name, value);
    reply
      .status(rendered.status)
      .header('content-type', 'application/json; charset=utf-8')
      .send(errorBody(rendered.code, rendered.message, rendered.details, request.id, request.traceId));
  }

  private render(exception: unknown, request: FastifyRequest): Rendered {
    if (exception instanceof AppException) {
      return {
        status: exception.getStatus(),
        code: exception.code,
        message: exception.message,
        details: exception.details,
        headers: exception.headers,
      };
    }
    if (exception instanceof HttpException) return this.renderHttp(exception, request);
    if (isDatabaseUnavailable(exception)) {
      return this.plain(503, ErrorCode.SERVICE_UNAVAILABLE, 'Database temporarily unavailable', { 'retry-after': '5' });
    }
    return this.plain(500, ErrorCode.INTERNAL_ERROR, 'Internal server error');
  }

  private renderHttp(exception: HttpException, request: FastifyRequest): Rendered {
    const status = exception.getStatus();
    const body = exception.getResponse();
    const text = typeof body === 'string' ? body : ((body as { message?: unknown }).message ?? exception.message);
    let message = Array.isArray(text) ? text.join('; ') : String(text);

    if (status === 404 && UNKNOWN_ROUTE.test(message)) {
      const allowed = this.routes.allowedMethods(request.url);
      if (allowed.length > 0) {
        return this.plain(405, ErrorCode.METHOD_NOT_ALLOWED, `Method ${request.method} is not allowed here`, {
          allow: allowed.join(', '),
        });
      }
      return this.plain(404, ErrorCode.NOT_FOUND, `No route for ${request.method} ${request.url.split('?')[0]}`);
    }
    if (status === 413) message = 'Request body is too large';
    if (status === 415) message = `Unsupported media type: ${request.headers['content-type'] ?? 'none'}`;
    if (status >= 500) message = status === 503 ? 'Service temporarily unavailable' : 'Internal server error';
    return this.plain(status, codeForStatus(status), message);
  }

  private plain(status: number, code: ErrorCodeValue, message: string, headers: Record<string, string> = {}): Rendered {
    return { status, code, message, details: [], headers };
  }
}
