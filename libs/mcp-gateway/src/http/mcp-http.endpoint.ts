import { Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { createMcpHandler, isJsonContentType, isLegacyRequest, McpHttpHandler } from '@modelcontextprotocol/server';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { clientInfo, correlate, ExecutionScopeResolver, parseJsonInput } from '@app/core';
import { Authenticator, rateAllowanceHeaders, RequestRateLimiter } from '@app/auth';
import { McpFederatedFeatures } from '../features/mcp-federated-features';
import { JsonRpcCode, jsonRpcErrorResponse, jsonRpcInputRefusalResponse, refusalOf, refusalResponse } from '../errors/mcp-errors';
import { authInfoOf, LegacySessionHandler, ParsedBody } from '../sessions/legacy-session.handler';
import { McpCaller, mcpCallerOf } from '../tools/mcp-caller';
import { MCP_CALLER_KEY, McpServerBuilder } from '../tools/mcp-server.builder';
import { McpToolIndex } from '../tools/mcp-tool-index';
import { TOOL_LIST_SPLICE_KEY, ToolListSplice } from '../tools/tool-list-splice';
import { CONTEXT_MCP_PATH, MAX_MESSAGE_BYTES, MCP_PATH, PROTECTED_RESOURCE_PATH } from './mcp-paths';
import { carriesModernClaim } from './era';
import { jsonRpcMethodsOf, McpAuthorization } from './mcp-authorization';
import { OriginPolicy } from './origin-policy';
import { sendWebResponse, toModernRequest, toWebRequest } from './web-exchange';

/**
 * MCP over Streamable HTTP at /api/v1/mcp and /api/v1/contexts/{id}/mcp, both protocol eras on
 * the same URL. In order: Host/Origin (403), then the edge every transport shares: authentication
 * (Authenticator; 401 with the RFC 9728 pointer), the general rate limit (RequestRateLimiter; 429
 * with Retry-After, counted with the caller's REST requests) and the execution scope
 * (ExecutionScopeResolver; context 404/403), resolved once per request; refusals in the MCP error
 * mapper's form (errors/mcp-errors.ts). Then the era: requests carrying the 2026-07-28 envelope go
 * to the SDK's stateless `createMcpHandler` (which checks the MCP-Protocol-Version, Mcp-Method and
 * Mcp-Name headers against the body), everything else to the 2025 session handler.
 *
 * Registered as plain Fastify routes in their own encapsulated scope: the SDK needs the raw body
 * (so it answers 415, -32700 and 413 as the spec says) and streams SSE answers itself.
 */
@Injectable()
export class McpHttpEndpoint implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(McpHttpEndpoint.name);
  private modern!: McpHttpHandler;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly authenticator: Authenticator,
    private readonly limiter: RequestRateLimiter,
    private readonly origins: OriginPolicy,
    private readonly scopes: ExecutionScopeResolver,
    private readonly builder: McpServerBuilder,
    private readonly legacy: LegacySessionHandler,
    private readonly index: McpToolIndex,
    private readonly federated: McpFederatedFeatures,
    private readonly authorization: McpAuthorization,
  ) {}

  onModuleInit(): void {
    this.modern = createMcpHandler(
      (ctx) => {
        const caller = ctx.authInfo?.extra?.[MCP_CALLER_KEY] as McpCaller;
        const splice = ctx.authInfo?.extra?.[TOOL_LIST_SPLICE_KEY] as ToolListSplice | undefined;
        return this.builder.build(
          () => caller,
          () => caller.principal.sessionId || null,
          splice,
        );
      },
      {
        legacy: 'reject',
        responseMode: 'auto',
        maxRequestBodySize: MAX_MESSAGE_BYTES,
        onerror: (error) => this.logger.debug({ err: error }, 'MCP request refused or failed'),
      },
    );
    // 2026-07-28 clients hear of catalogue changes and of the resources they listen to on their subscriptions/listen streams.
    // A catalogue change and the upstream announcement behind it come within moments: one notification.
    const toolsChanged = coalesced(() => this.modern.notify.toolsChanged());
    const unsubscribeTools = this.index.onChanged(toolsChanged);
    const unsubscribeFederated = this.federated.onNotification((notification) => {
      if (notification.method === 'notifications/tools/list_changed') toolsChanged();
      else if (notification.method === 'notifications/prompts/list_changed') this.modern.notify.promptsChanged();
      else if (notification.method === 'notifications/resources/list_changed') this.modern.notify.resourcesChanged();
      // Only streams whose filter names the URI get it, and openListen let only URIs their caller may read into filters.
      else if (notification.method === 'notifications/resources/updated')
        this.modern.notify.resourceUpdated(this.federated.agentUri(notification));
    });
    this.unsubscribe = () => {
      unsubscribeTools();
      unsubscribeFederated();
    };

    // Absent in application contexts without HTTP (the CLI).
    const fastify = this.adapterHost.httpAdapter?.getInstance?.() as FastifyInstance | undefined;
    if (!fastify?.register) return;
    const handler = (request: FastifyRequest, reply: FastifyReply) => this.handle(request, reply);
    void fastify.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_MESSAGE_BYTES }, (_request, body, done) => done(null, body));
      scope.setErrorHandler((error: FastifyError, _request, reply) => {
        const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
        if (status >= 500) this.logger.error({ err: error }, 'MCP endpoint failed');
        return sendWebResponse(
          reply,
          jsonRpcErrorResponse(status, JsonRpcCode.SERVER_ERROR, status >= 500 ? 'Internal error' : error.message),
        );
      });
      for (const url of [MCP_PATH, CONTEXT_MCP_PATH]) scope.route({ method: ['GET', 'POST', 'DELETE'], url, handler });
    });
    const metadata = (request: FastifyRequest, reply: FastifyReply) => this.protectedResourceMetadata(request, reply);
    fastify.get(PROTECTED_RESOURCE_PATH, metadata);
    fastify.get(`${PROTECTED_RESOURCE_PATH}${MCP_PATH}`, metadata);
    fastify.get(`${PROTECTED_RESOURCE_PATH}${CONTEXT_MCP_PATH}`, metadata);
  }

  async onApplicationShutdown(): Promise<void> {
    this.unsubscribe?.();
    await this.modern?.close();
  }

  private async handle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const refusal = this.origins.check(request.headers.host, single(request.headers.origin));
    if (refusal) return sendWebResponse(reply, jsonRpcErrorResponse(refusal.status, JsonRpcCode.SERVER_ERROR, refusal.message));

    let caller: McpCaller;
    try {
      caller = await this.edge(request, reply);
    } catch (error) {
      return sendWebResponse(reply, this.refused(request, error));
    }

    if (request.method !== 'POST') return sendWebResponse(reply, await this.legacy.handle(toWebRequest(request, reply), caller, undefined));
    if (!isJsonContentType(single(request.headers['content-type']) ?? null)) {
      return sendWebResponse(
        reply,
        jsonRpcErrorResponse(415, JsonRpcCode.SERVER_ERROR, 'Unsupported Media Type: Content-Type must be application/json'),
      );
    }
    // The same input rules as REST bodies: bounded depth, no NUL, lone surrogate or __proto__.
    const parsed = parseJsonInput(typeof request.body === 'string' ? request.body : '');
    if (!parsed.ok) return sendWebResponse(reply, jsonRpcInputRefusalResponse(parsed));
    const body: ParsedBody = { ok: true, value: parsed.value };
    // A tool call with a token scoped to reading: 403 insufficient_scope, so the client steps up.
    try {
      this.authorization.requireScope(caller.principal, baseUrlOf(request), contextIdOf(request), jsonRpcMethodsOf(body.value));
    } catch (error) {
      return sendWebResponse(reply, this.refused(request, error));
    }
    const webRequest = carriesModernClaim(body.value) ? undefined : toWebRequest(request, reply);
    if (!webRequest || !(await isLegacyRequest(webRequest, body.value, { maxRequestBodySize: MAX_MESSAGE_BYTES }))) {
      const authInfo = authInfoOf(caller);
      const splice = new ToolListSplice();
      authInfo.extra = { ...authInfo.extra, [TOOL_LIST_SPLICE_KEY]: splice };
      // A listen stream's resource subscriptions last as long as the stream (sendWebResponse returns when it has ended).
      const listening = await this.federated.openListen(caller, body.value);
      try {
        // The body goes in parsed: the SDK reads only the request's method, headers, signal and URL.
        const response = await this.modern.fetch(webRequest ?? toModernRequest(request, reply), { authInfo, parsedBody: body.value });
        // A tools/list answer (JSON, or one SSE event) is small until the cached tools go in.
        return await sendWebResponse(reply, response, splice.held ? (answer) => splice.apply(answer) : undefined);
      } finally {
        listening?.();
      }
    }
    return sendWebResponse(reply, await this.legacy.handle(webRequest, caller, body));
  }

  /** The shared edge, as REST runs it: who is calling, their general budget, then their scope. */
  private async edge(request: FastifyRequest, reply: FastifyReply): Promise<McpCaller> {
    const contextId = contextIdOf(request);
    const base = baseUrlOf(request);
    // The token must be for this endpoint (its audience), not another one of ours.
    const principal = await this.authenticator.authenticate({
      authorization: request.headers.authorization,
      query: request.query,
      client: clientInfo(request),
      use: { resource: this.authorization.resource(base, contextId) },
    });
    this.authorization.requireScope(principal, base, contextId);
    const allowance = await this.limiter.consume('default', RequestRateLimiter.trackerOf(principal, request.ip));
    reply.headers(rateAllowanceHeaders(allowance));
    const scope = await this.scopes.resolve(principal, contextId);
    return mcpCallerOf({ ...scope, correlation: correlate(request, principal) }, clientInfo(request));
  }

  /**
   * A refusal of the edge; a 401 with `WWW-Authenticate: Bearer resource_metadata=…, scope=…` (MCP
   * authorization, RFC 9728); a 403 for a token without the MCP scope carries its own challenge.
   */
  private refused(request: FastifyRequest, error: unknown): Response {
    const refused = refusalOf(error);
    if (!refused) throw error;
    if (refused.status !== 401) return refusalResponse(refused);
    const given = typeof request.headers.authorization === 'string';
    const challenge = this.authorization.challenge(baseUrlOf(request), contextIdOf(request), given);
    return refusalResponse(refused, { 'www-authenticate': challenge });
  }

  /** RFC 9728 protected resource metadata: bearer tokens (ours, our authorization server's, agent API keys) in the header only. */
  private async protectedResourceMetadata(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    // The document names this host: answer only for hosts the MCP endpoints answer for.
    const refusal = this.origins.check(request.headers.host, undefined);
    if (refusal) return sendWebResponse(reply, jsonRpcErrorResponse(refusal.status, JsonRpcCode.SERVER_ERROR, refusal.message));
    await reply.header('cache-control', 'max-age=3600').send(this.authorization.metadata(baseUrlOf(request), contextIdOf(request)));
  }
}

/** `fire`, at most once per TOOLS_CHANGED_COALESCE_MS however often it is asked for meanwhile. */
function coalesced(fire: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      fire();
    }, TOOLS_CHANGED_COALESCE_MS);
    timer.unref();
  };
}

/** How long tool-list changes are gathered into one notification on the 2026-07-28 listen streams. */
const TOOLS_CHANGED_COALESCE_MS = 50;

/** The context of a context endpoint (or of its metadata document); undefined for /api/v1/mcp. */
function contextIdOf(request: FastifyRequest): string | undefined {
  return (request.params as { id?: string } | undefined)?.id;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function baseUrlOf(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}
