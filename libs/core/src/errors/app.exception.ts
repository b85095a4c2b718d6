import { HttpException } from '@nestjs/common';
import { ErrorCode, ErrorCodeValue } from './error-code';

export interface ErrorDetail {
  field?: string;
  message: string;
  code?: string;
}

/**
 * A domain error with a stable code. Thrown anywhere; rendered by the REST filter as the
 * contract's Error body, and by the MCP gateway as a tool error result carrying the code.
 */
export class AppException extends HttpException {
  constructor(
    readonly code: ErrorCodeValue,
    message: string,
    status: number,
    readonly details: ErrorDetail[] = [],
    /** Extra response headers, e.g. Retry-After or WWW-Authenticate. */
    readonly headers: Record<string, string> = {},
  ) {
    super(message, status);
  }

  static validation(details: ErrorDetail[], message = 'Invalid request parameters'): AppException {
    return new AppException(ErrorCode.VALIDATION_ERROR, message, 400, details);
  }

  static notFound(message = 'Resource not found'): AppException {
    return new AppException(ErrorCode.NOT_FOUND, message, 404);
  }

  static unauthorized(message = 'Authentication required', code: ErrorCodeValue = ErrorCode.UNAUTHORIZED): AppException {
    return new AppException(code, message, 401);
  }

  static forbidden(message = 'Insufficient permissions', code: ErrorCodeValue = ErrorCode.FORBIDDEN): AppException {
    return new AppException(code, message, 403);
  }

  static conflict(message: string, code: ErrorCodeValue = ErrorCode.CONFLICT): AppException {
    return new AppException(code, message, 409);
  }

  static unavailable(message = 'Service temporarily unavailable'): AppException {
    return new AppException(ErrorCode.SERVICE_UNAVAILABLE, message, 503);
  }
}
