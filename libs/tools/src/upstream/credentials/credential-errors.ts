import { randomUUID } from 'node:crypto';
import { SdkError, UnauthorizedError } from '@modelcontextprotocol/client';
import type { ClientRequestRelay } from '../../provider/client-request-relay';
import { ToolError } from '../../provider/tool-error';
import type { UpstreamAuth } from '../upstream-auth';

/** Failure codes of calls to upstreams that take each user's own credential. */
export const CredentialErrorCode = {
  /** The caller has no credential of their own for the upstream (or their account is not active). */
  UPSTREAM_CREDENTIAL_REQUIRED: 'UPSTREAM_CREDENTIAL_REQUIRED',
  /** The upstream refused the caller's own credential (HTTP 401 or 403): it must be replaced. */
  UPSTREAM_CREDENTIAL_REJECTED: 'UPSTREAM_CREDENTIAL_REJECTED',
} as const;

/** The MCP error an SDK client turns into UrlElicitationRequiredError (2025-11-25, URL-mode elicitation). */
export const URL_ELICITATION_REQUIRED = -32042;

/** The REST route where a user stores their own secret for `upstream`. */
export function connectRoute(upstream: string): string {
  return `PUT /api/v1/upstream-connections/${upstream}`;
}

/**
 * The caller has no usable credential. An agent that declared URL-mode elicitation gets the
 * spec's URLElicitationRequiredError pointing at the connect page (user-oauth: the gateway's own
 * one-time connect link; user-secret: the configured page); every other caller gets
 * UPSTREAM_CREDENTIAL_REQUIRED naming the page (and, for user-secret, the REST route).
 */
export function credentialRequired(upstream: string, auth: UpstreamAuth, relay: ClientRequestRelay | undefined, given?: string): ToolError {
  const connectUrl = given ?? (auth.mode === 'user-secret' ? auth.connectUrl : undefined);
  const oauth = auth.mode === 'user-oauth';
  const message = oauth
    ? connectUrl
      ? `Upstream ${upstream} acts with your own account there and you have not connected it: open ${connectUrl} in a browser signed in to this gateway, then try again`
      : `Upstream ${upstream} acts with your own account there and you have not connected it; the connect page is not available (the gateway's OAuth sign-in is off)`
    : `Upstream ${upstream} acts with your own credential and you have none stored: set it ${connectUrl ? `at ${connectUrl} or with ${connectRoute(upstream)}` : `with ${connectRoute(upstream)}`}, then try again`;
  const elicitation = relay?.capabilities.elicitation as Record<string, unknown> | undefined;
  if (!connectUrl || !elicitation || elicitation.url === undefined) {
    return new ToolError(CredentialErrorCode.UPSTREAM_CREDENTIAL_REQUIRED, message);
  }
  return new ToolError(CredentialErrorCode.UPSTREAM_CREDENTIAL_REQUIRED, message, undefined, {
    code: URL_ELICITATION_REQUIRED,
    message,
    data: {
      elicitations: [
        {
          mode: 'url',
          elicitationId: randomUUID(),
          url: connectUrl,
          message: oauth
            ? `Connect your ${upstream} account: sign in there and allow the gateway to act for you.`
            : `Connect your account to ${upstream}: store your personal token for it at the gateway.`,
        },
      ],
    },
  });
}

export function credentialRejected(upstream: string, status: number | undefined, mode: UpstreamAuth['mode']): ToolError {
  const http = status ? ` (HTTP ${status})` : '';
  const message =
    mode === 'token-exchange'
      ? `Upstream ${upstream} refused the token the identity provider issued for you${http}: try again; ask an administrator if this persists`
      : mode === 'user-oauth'
        ? `Upstream ${upstream} refused the token of your connection${http}: disconnect it with DELETE /api/v1/upstream-connections/${upstream} and connect again`
        : `Upstream ${upstream} refused your credential${http}: replace it with ${connectRoute(upstream)}, then try again`;
  return new ToolError(CredentialErrorCode.UPSTREAM_CREDENTIAL_REJECTED, message);
}

/** 401 or 403 when the upstream refused the credential the request carried; undefined for any other failure. */
export function refusedStatus(error: unknown): number | undefined {
  if (error instanceof UnauthorizedError) return 401;
  if (!(error instanceof SdkError)) return undefined;
  const status = (error.data as { status?: unknown } | undefined)?.status;
  return status === 401 || status === 403 ? status : undefined;
}
