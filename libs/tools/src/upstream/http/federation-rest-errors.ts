import { AppException, ErrorCode } from '@app/core';
import { clip, UpstreamErrorCode } from '../upstream-failure';
import { FederationError, FederationErrorCode } from '../upstream-features.service';

/** `error` codes of the REST prompt and resource routes, on top of the core ones and UpstreamErrorCode. */
export const FederationRestErrorCode = {
  /** The upstream failed in a way of its own (an error code other than invalid params / not found) (502). */
  UPSTREAM_ERROR: 'UPSTREAM_ERROR',
  /** The upstream did not answer within its call timeout (504). */
  UPSTREAM_TIMEOUT: 'UPSTREAM_TIMEOUT',
  /** The upstream asks the caller for input (sampling, elicitation, roots: an InputRequiredResult), which only an MCP agent can give (409). */
  INPUT_REQUIRED: 'INPUT_REQUIRED',
} as const;

/** JSON-RPC codes an upstream uses for "the caller's input is wrong" and "no such resource". */
const INVALID_PARAMS = -32602;
const RESOURCE_NOT_FOUND = -32002;

/**
 * What the MCP path answers as a JSON-RPC error (UpstreamFeatureService's FederationError), in
 * the contract's Error body: our refusals with their REST status (unknown → 404, definition held
 * for approval → 403, upstream down → 503, timeout → 504), the upstream's own errors with the
 * upstream's words in `details` (its invalid params → 400 on `field`, not found → 404, anything
 * else → 502). Everything else (AppException: rate limits, scope refusals) passes unchanged.
 */
export function restErrorOf(error: unknown, field: 'arguments' | 'uri'): unknown {
  if (!(error instanceof FederationError)) return error;
  const said = clip(error.message);
  if (error.origin === 'upstream') {
    const detail = { field, message: said, code: `JSONRPC_${error.code}` };
    if (error.code === INVALID_PARAMS) return AppException.validation([detail], 'The upstream refused the request');
    if (error.code === RESOURCE_NOT_FOUND) return new AppException(ErrorCode.NOT_FOUND, 'Resource not found', 404, [detail]);
    return new AppException(FederationRestErrorCode.UPSTREAM_ERROR, 'The upstream answered an error', 502, [detail]);
  }
  switch (error.code) {
    case FederationErrorCode.INVALID_PARAMS:
      return AppException.notFound(error.message);
    case FederationErrorCode.RESOURCE_NOT_FOUND:
      return new AppException(ErrorCode.NOT_FOUND, 'Resource not found', 404, [
        { field, message: 'No resource or resource template you may read has this URI', code: 'RESOURCE_NOT_FOUND' },
      ]);
  }
  const reason = (error.data as { error?: unknown } | undefined)?.error;
  if (reason === UpstreamErrorCode.DEFINITION_NOT_APPROVED) return new AppException(reason, error.message, 403);
  // Per-user upstreams (issue 17): the caller's own credential is missing or refused (403), or the IdP gave none (502).
  if (reason === 'UPSTREAM_CREDENTIAL_REQUIRED' || reason === 'UPSTREAM_CREDENTIAL_REJECTED')
    return new AppException(reason, error.message, 403);
  if (reason === 'UPSTREAM_TOKEN_EXCHANGE_FAILED') return new AppException(reason, error.message, 502);
  if (reason === 'BUSY') return new AppException(reason, error.message, 503, [], { 'Retry-After': '5' });
  if (reason === UpstreamErrorCode.UPSTREAM_UNAVAILABLE) return new AppException(reason, error.message, 503, [], { 'Retry-After': '5' });
  if (reason === 'TIMEOUT') return new AppException(FederationRestErrorCode.UPSTREAM_TIMEOUT, error.message, 504);
  return new AppException(FederationRestErrorCode.UPSTREAM_ERROR, error.message, 502);
}
