/**
 * Expected failures of a tool call. The pipeline turns them into a `failed` execution carrying
 * `code` and `message`; they are written for the caller, so they never contain host paths or secrets.
 */
export const ToolErrorCode = {
  INVALID_INPUT: 'INVALID_INPUT',
  NOT_FOUND: 'NOT_FOUND',
  ALREADY_EXISTS: 'ALREADY_EXISTS',
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  SANDBOX_VIOLATION: 'SANDBOX_VIOLATION',
  TOO_LARGE: 'TOO_LARGE',
  HOST_NOT_ALLOWED: 'HOST_NOT_ALLOWED',
  FORBIDDEN_ADDRESS: 'FORBIDDEN_ADDRESS',
  TOO_MANY_REDIRECTS: 'TOO_MANY_REDIRECTS',
  UPSTREAM_ERROR: 'UPSTREAM_ERROR',
  TIMEOUT: 'TIMEOUT',
  ABORTED: 'ABORTED',
  BUSY: 'BUSY',
  /** The result is larger than the configured limit (e.g. MCP_UPSTREAM_RESULT_MAX_BYTES). */
  RESULT_TOO_LARGE: 'RESULT_TOO_LARGE',
} as const;

export type ToolErrorCodeValue = (typeof ToolErrorCode)[keyof typeof ToolErrorCode] | (string & {});

export interface ToolErrorDetail {
  field: string;
  message: string;
}

/** A JSON-RPC error an upstream answered: relayed to MCP agents as that error (its code, message and data). */
export interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

export class ToolError extends Error {
  constructor(
    readonly code: ToolErrorCodeValue,
    message: string,
    readonly details?: ToolErrorDetail[],
    readonly rpc?: RpcError,
  ) {
    super(message);
    this.name = 'ToolError';
  }
}

/**
 * The error to throw once `signal` has fired: the signal's reason when it is already a ToolError
 * (a pipeline timeout may abort with `TIMEOUT`), otherwise ABORTED.
 */
export function abortedError(signal: AbortSignal): ToolError {
  return signal.reason instanceof ToolError ? signal.reason : new ToolError(ToolErrorCode.ABORTED, 'The call was cancelled');
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw abortedError(signal);
}
