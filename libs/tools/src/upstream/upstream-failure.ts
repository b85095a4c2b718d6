import { ProtocolError, SdkError, SdkErrorCode, SdkHttpError } from '@modelcontextprotocol/client';

/** Failure codes of calls to upstream tools, on top of ToolErrorCode (UPSTREAM_ERROR, TIMEOUT, BUSY, ABORTED). */
export const UpstreamErrorCode = {
  /** The upstream is down, still connecting, or the connection broke during the call. */
  UPSTREAM_UNAVAILABLE: 'UPSTREAM_UNAVAILABLE',
  /** The upstream now offers a definition an administrator has not approved. */
  DEFINITION_NOT_APPROVED: 'DEFINITION_NOT_APPROVED',
} as const;

export interface FailureReading {
  /** `connection`: the link to the upstream is gone (reconnect); the rest concern one request. */
  kind: 'connection' | 'timeout' | 'protocol' | 'other';
  /** Short and free of addresses, paths and secrets: shown to callers. */
  summary: string;
  /** As summary, minus any text the upstream wrote: shown in the public /health/detailed. */
  publicSummary?: string;
}

const MAX_UPSTREAM_MESSAGE = 200;

const CONNECTION_SDK_CODES = new Set<string>([
  SdkErrorCode.NotConnected,
  SdkErrorCode.ConnectionClosed,
  SdkErrorCode.SendFailed,
  SdkErrorCode.NotInitialized,
  SdkErrorCode.EraNegotiationFailed,
  SdkErrorCode.ClientHttpNotImplemented,
  SdkErrorCode.ClientHttpAuthentication,
  SdkErrorCode.ClientHttpForbidden,
  SdkErrorCode.ClientHttpUnexpectedContent,
  SdkErrorCode.ClientHttpFailedToOpenStream,
]);

const SYSTEM_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection broken',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connect timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
  UND_ERR_SOCKET: 'connection broken',
  ENOENT: 'command not found',
  EACCES: 'command not executable',
};

/** What went wrong, in terms the provider acts on and callers may read. Details stay in the log. */
export function readFailure(error: unknown): FailureReading {
  if (error instanceof SdkHttpError) {
    const status = error.status;
    if (status === 401 || status === 403)
      return { kind: 'connection', summary: `the upstream rejected the gateway's credentials (HTTP ${status})` };
    if (status === 404) return { kind: 'connection', summary: 'the upstream no longer knows the session (HTTP 404)' };
    return { kind: 'connection', summary: `the upstream answered HTTP ${status}` };
  }
  if (error instanceof SdkError) {
    if (error.code === SdkErrorCode.RequestTimeout) return { kind: 'timeout', summary: 'timed out' };
    if (error.code === SdkErrorCode.ConnectionClosed) return { kind: 'connection', summary: 'connection closed' };
    if (CONNECTION_SDK_CODES.has(error.code)) return { kind: 'connection', summary: systemError(error) ?? sdkSummary(error.code) };
    return { kind: 'other', summary: sdkSummary(error.code) };
  }
  if (error instanceof ProtocolError) {
    return {
      kind: 'protocol',
      summary: `the upstream answered error ${error.code}: ${clip(error.message)}`,
      publicSummary: `the upstream answered error ${error.code}`,
    };
  }
  const system = systemError(error);
  if (system) return { kind: 'connection', summary: system };
  if (error instanceof TypeError && /fetch failed|terminated|network/i.test(error.message))
    return { kind: 'connection', summary: 'request failed' };
  return { kind: 'other', summary: 'unexpected error' };
}

/** The upstream's own text, trimmed: it reaches callers, and an upstream may be chatty. */
export function clip(message: string, max = MAX_UPSTREAM_MESSAGE): string {
  const flat = String(message).replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** A Node system error code anywhere in the cause chain (fetch wraps them: TypeError → cause). */
function systemError(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && SYSTEM_ERRORS[code]) return SYSTEM_ERRORS[code];
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function sdkSummary(code: string): string {
  return code.toLowerCase().replace(/_/g, ' ');
}
