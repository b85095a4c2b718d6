import type { Client } from '@modelcontextprotocol/client';
import type { Correlation } from '@app/core';
import type { ClientRequestRelay } from '../../provider/client-request-relay';
import { ToolError, ToolErrorCode } from '../../provider/tool-error';
import type { UpstreamToolProvider } from '../upstream-tool.provider';

/**
 * The connection one prompt, resource or completion request of an agent goes over, for as long
 * as it runs. For an upstream with per-user `auth` it is the caller's own connection (their own
 * credential, their own upstream session), exactly as for a tool call; never the catalogue
 * connection, which carries the gateway's listing credential, and never another user's.
 */
export interface FeatureLease {
  client: Client;
  /** What goes into the request for the agent's relay (see UpstreamToolProvider.track). */
  params: Record<string, unknown>;
  /** What goes into the request's options (the SDK's per-request headers): the call's mark (see UpstreamToolProvider.track). */
  headers: Record<string, string> | undefined;
  /**
   * Ends the request. Given the error it failed with, a refusal of the user's credential (401/403)
   * drops their connection, is audited, and comes back as UPSTREAM_CREDENTIAL_REJECTED.
   */
  end(error?: unknown): Promise<ToolError | undefined>;
}

/** Who a request is for: the user whose own credential it must carry. */
export interface LeaseHolder {
  userId: string;
  correlation?: Correlation;
  /** The caller's IdP access token (token exchange with it as subject); never sent upstream. */
  idpToken?: string;
}

/** The caller's own connection to a per-user upstream; throws what a tool call would (credential required, rejected, busy, unavailable). */
export async function userFeatureLease(
  provider: UpstreamToolProvider,
  holder: LeaseHolder,
  relay: ClientRequestRelay | undefined,
): Promise<FeatureLease> {
  const link = await provider.acquireUserLink(holder.userId, relay, holder.correlation, holder.idpToken);
  // Defence in depth: the pool keys links by user already.
  if (link.userId !== holder.userId) {
    await provider.releaseUserLink(link, holder.userId);
    throw new Error('A per-user upstream connection was about to serve another user');
  }
  const tracked = provider.track(relay, link);
  let ended = false;
  return {
    client: link.client,
    params: tracked.params,
    headers: tracked.headers,
    async end(error?: unknown) {
      if (ended) return undefined;
      ended = true;
      tracked.leave();
      return provider.releaseUserLink(link, holder.userId, error);
    },
  };
}

/** JSON-RPC shape of a ToolError a per-user upstream's prompt or resource request failed with. */
export interface FeatureRefusal {
  code: number;
  message: string;
  /** `error` is the gateway's code (UPSTREAM_CREDENTIAL_REQUIRED, ...); a URL elicitation adds `elicitations`. */
  data: Record<string, unknown>;
}

/** The gateway's generic server error code for its own refusals (FederationErrorCode.SERVER_ERROR). */
const SERVER_ERROR = -32000;

/**
 * A credential refusal as the JSON-RPC error agents get on prompts/get and resources/read: the
 * spec's URLElicitationRequiredError (-32042) for an agent that declared URL-mode elicitation,
 * otherwise the gateway's server error naming the code, as tool calls name it.
 */
export function featureRefusalOf(error: ToolError): FeatureRefusal {
  const reason = error.code === ToolErrorCode.BUSY ? 'BUSY' : error.code;
  if (error.rpc) {
    const data = typeof error.rpc.data === 'object' && error.rpc.data !== null ? (error.rpc.data as Record<string, unknown>) : {};
    return { code: error.rpc.code, message: error.rpc.message, data: { ...data, error: reason } };
  }
  return { code: SERVER_ERROR, message: error.message, data: { error: reason } };
}
