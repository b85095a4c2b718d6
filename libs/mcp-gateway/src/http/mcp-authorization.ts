import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig, AppException, ErrorCode, Principal } from '@app/core';
import { MCP_READ_SCOPE, MCP_SCOPE, mcpResourceUrl, OAuthIssuer, OFFLINE_ACCESS, scopeRequiredFor } from '@app/oauth';
import { PROTECTED_RESOURCE_PATH } from './mcp-paths';

/**
 * The MCP endpoints as OAuth protected resources (MCP authorization; RFC 9728, RFC 8707, RFC
 * 6750): each endpoint's canonical URL (the audience its tokens must carry), its protected-resource
 * metadata naming our authorization server, the `WWW-Authenticate` challenges of a 401 and of a
 * 403 for a token without the MCP scope (step-up). The origin is OAUTH_ISSUER's when configured
 * (the public origin behind a proxy), else the request's own.
 */
@Injectable()
export class McpAuthorization {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly issuer: OAuthIssuer,
  ) {}

  get enabled(): boolean {
    return this.config.oauth.enabled;
  }

  origin(requestBase: string): string {
    return this.config.oauth.issuer ?? requestBase;
  }

  /** The canonical URL of the endpoint (its WebSocket transport included). */
  resource(requestBase: string, contextId?: string): string {
    return mcpResourceUrl(this.origin(requestBase), contextId);
  }

  /** Where the endpoint's RFC 9728 metadata is: the root document for /api/v1/mcp, a path-suffixed one for a context. */
  metadataUrl(requestBase: string, contextId?: string): string {
    const origin = this.origin(requestBase);
    if (contextId === undefined) return `${origin}${PROTECTED_RESOURCE_PATH}`;
    return `${origin}${PROTECTED_RESOURCE_PATH}${new URL(mcpResourceUrl(origin, contextId)).pathname}`;
  }

  /** The 401's challenge: the metadata's URL and, with the authorization server on, the scope to ask for. */
  challenge(requestBase: string, contextId: string | undefined, invalidToken: boolean): string {
    const scope = this.enabled ? `, scope="${MCP_SCOPE}"` : '';
    return `Bearer resource_metadata="${this.metadataUrl(requestBase, contextId)}"${scope}${invalidToken ? ', error="invalid_token"' : ''}`;
  }

  /**
   * An OAuth token of ours must carry an MCP scope, and `mcp:tools` for the JSON-RPC `methods` that
   * need it (a tool call): otherwise 403 insufficient_scope naming the scope to step up to
   * (RFC 6750 §3.1; the MCP client re-authorizes with it). Other credentials are governed by
   * permissions alone.
   */
  requireScope(principal: Principal, requestBase: string, contextId?: string, methods: readonly string[] = []): void {
    if (principal.via !== 'oauth') return;
    const scopes = principal.scopes ?? [];
    const anyMcpScope = scopes.includes(MCP_SCOPE) || scopes.includes(MCP_READ_SCOPE);
    const missing = anyMcpScope ? methods.map(scopeRequiredFor).find((scope) => scope && !scopes.includes(scope)) : MCP_SCOPE;
    if (!missing) return;
    // The scope is named in the challenge (HTTP) and in the details (the JSON-RPC error's data, WebSocket too).
    const details = [{ field: 'scope', code: 'insufficient_scope', message: `Requires the ${missing} scope` }];
    throw new AppException(ErrorCode.FORBIDDEN, `This token lacks the ${missing} scope`, 403, details, {
      'WWW-Authenticate': `Bearer error="insufficient_scope", scope="${missing}", resource_metadata="${this.metadataUrl(requestBase, contextId)}"`,
    });
  }

  /** The RFC 9728 document of an endpoint. */
  metadata(requestBase: string, contextId?: string): Record<string, unknown> {
    const origin = this.origin(requestBase);
    const issuer = this.issuer.value;
    return {
      resource: mcpResourceUrl(origin, contextId),
      ...(this.enabled && issuer ? { authorization_servers: [issuer], scopes_supported: [MCP_SCOPE, MCP_READ_SCOPE, OFFLINE_ACCESS] } : {}),
      bearer_methods_supported: ['header'],
      resource_name: 'Secure MCP Server',
      resource_documentation: `${origin}/api/docs`,
    };
  }
}

/** The JSON-RPC methods a body asks for (one message or a batch). */
export function jsonRpcMethodsOf(value: unknown): string[] {
  const messages = Array.isArray(value) ? value : [value];
  return messages.flatMap((message) =>
    message && typeof message === 'object' && typeof (message as { method?: unknown }).method === 'string'
      ? [(message as { method: string }).method]
      : [],
  );
}
