/**
 * Stable error codes. REST renders them as the `error` field of the contract's Error body; an
 * MCP tool call that is refused or fails carries the same code in its error result (`isError`).
 * Add, never rename.
 */
export const ErrorCode = {
  VALIDATION_ERROR: 'VALIDATION_ERROR',
  BAD_REQUEST: 'BAD_REQUEST',
  MALFORMED_JSON: 'MALFORMED_JSON',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  CONFLICT: 'CONFLICT',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** A path segment longer than the router takes (414). */
  URI_TOO_LONG: 'URI_TOO_LONG',
  /** Request line plus headers over Node's limit (431). */
  HEADERS_TOO_LARGE: 'HEADERS_TOO_LARGE',
  /** The client did not send its request in time (408). */
  REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  RATE_LIMIT_EXCEEDED: 'RATE_LIMIT_EXCEEDED',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  INTERNAL_ERROR: 'INTERNAL_ERROR',
  /** The password was right but the account needs its second factor: send `mfaCode`. */
  MFA_REQUIRED: 'MFA_REQUIRED',
  /** The change would leave no active administrator. */
  LAST_ADMIN: 'LAST_ADMIN',
  /** The user's current status does not allow the change (e.g. reactivating an active user). */
  INVALID_USER_STATUS: 'INVALID_USER_STATUS',
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode] | (string & {});

/** The code a bare HTTP status maps to when nothing more specific is known. */
export function codeForStatus(status: number): ErrorCodeValue {
  switch (status) {
    case 400:
      return ErrorCode.BAD_REQUEST;
    case 401:
      return ErrorCode.UNAUTHORIZED;
    case 403:
      return ErrorCode.FORBIDDEN;
    case 404:
      return ErrorCode.NOT_FOUND;
    case 405:
      return ErrorCode.METHOD_NOT_ALLOWED;
    case 409:
      return ErrorCode.CONFLICT;
    case 408:
      return ErrorCode.REQUEST_TIMEOUT;
    case 413:
      return ErrorCode.PAYLOAD_TOO_LARGE;
    case 414:
      return ErrorCode.URI_TOO_LONG;
    case 415:
      return ErrorCode.UNSUPPORTED_MEDIA_TYPE;
    case 431:
      return ErrorCode.HEADERS_TOO_LARGE;
    case 429:
      return ErrorCode.RATE_LIMIT_EXCEEDED;
    case 503:
      return ErrorCode.SERVICE_UNAVAILABLE;
    default:
      return status >= 500 ? ErrorCode.INTERNAL_ERROR : ErrorCode.BAD_REQUEST;
  }
}
