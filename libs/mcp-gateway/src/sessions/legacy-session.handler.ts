import { Injectable, Logger } from '@nestjs/common';
import { AuthInfo, isInitializeRequest, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server';
import { SessionService } from '@app/sessions';
import { JsonRpcCode, jsonRpcErrorResponse } from '../http/json-rpc-responses';
import type { McpCaller } from '../tools/mcp-caller';
import { callerOfRequest, MCP_CALLER_KEY, McpServerBuilder } from '../tools/mcp-server.builder';
import { credentialOf, McpConnectionRegistry } from './mcp-connection.registry';

/** Live 2025-era sessions one process holds at most (each keeps a server and its streams in memory). */
const MAX_LEGACY_SESSIONS = 10_000;

export type ParsedBody = { ok: true; value: unknown } | { ok: false };

export function authInfoOf(caller: McpCaller): AuthInfo {
  return {
    token: '',
    clientId: caller.principal.apiKeyId ?? caller.principal.userId,
    scopes: caller.principal.permissions,
    extra: { [MCP_CALLER_KEY]: caller },
  };
}

/**
 * The 2025 era (2025-11-25, 2025-06-18, 2025-03-26): `initialize` opens one of our sessions, whose
 * id is the `Mcp-Session-Id`; the SDK's sessionful transport then serves its POSTs, its GET
 * stream and its DELETE. A session id that is unknown here, ended, or not the caller's answers
 * 404 (the client starts over with `initialize`); a request without one answers 400.
 *
 * These sessions live in this process's memory (the SDK transport is stateful), so the 2025 era
 * needs sticky routing when scaled out; a client that reaches another replica gets 404 and
 * re-initializes. The 2026-07-28 era is stateless and needs nothing of the sort.
 */
@Injectable()
export class LegacySessionHandler {
  private readonly logger = new Logger(LegacySessionHandler.name);
  private readonly transports = new Map<string, WebStandardStreamableHTTPServerTransport>();

  constructor(
    private readonly registry: McpConnectionRegistry,
    private readonly sessions: SessionService,
    private readonly builder: McpServerBuilder,
  ) {}

  async handle(request: Request, caller: McpCaller, body: ParsedBody | undefined): Promise<Response> {
    const sessionId = request.headers.get('mcp-session-id');
    if (sessionId) return this.continueSession(request, caller, body, sessionId);
    if (request.method === 'POST' && body && !body.ok) return jsonRpcErrorResponse(400, JsonRpcCode.PARSE_ERROR, 'Parse error: the body is not valid JSON');
    if (request.method === 'POST' && body?.ok && isInitializeRequest(body.value)) return this.initialize(request, caller, body.value);
    return jsonRpcErrorResponse(400, JsonRpcCode.SERVER_ERROR, 'Bad Request: Mcp-Session-Id header is required');
  }

  private async continueSession(request: Request, caller: McpCaller, body: ParsedBody | undefined, sessionId: string): Promise<Response> {
    const connection = this.registry.get(sessionId);
    const transport = this.transports.get(sessionId);
    const owned =
      connection?.kind === 'http' &&
      connection.userId === caller.principal.userId &&
      connection.credential === credentialOf(caller) &&
      connection.contextId === caller.contextId;
    if (!connection || !transport || !owned) return sessionNotFound();
    if (!(await this.sessions.isActive(sessionId))) {
      await this.registry.abandon(sessionId, caller.principal.userId, 'expired');
      return sessionNotFound();
    }
    const sessionCaller: McpCaller = { ...caller, principal: { ...caller.principal, sessionId } };
    return transport.handleRequest(request, { authInfo: authInfoOf(sessionCaller), parsedBody: body?.ok ? body.value : undefined });
  }

  private async initialize(request: Request, caller: McpCaller, message: unknown): Promise<Response> {
    if (this.registry.count('http') >= MAX_LEGACY_SESSIONS) {
      return jsonRpcErrorResponse(503, JsonRpcCode.SERVER_ERROR, 'Too many open MCP sessions; use protocol version 2026-07-28 (stateless) or retry later', {
        'retry-after': '30',
      });
    }
    const sessionId = await this.registry.open(caller, 'http', 'streamable-http');
    const sessionCaller: McpCaller = { ...caller, principal: { ...caller.principal, sessionId } };
    const server = this.builder.build(callerOfRequest, () => sessionId);
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => sessionId,
      // DELETE: forget the id first (it answers 404 from now on), then end the session.
      onsessionclosed: (id) => {
        this.transports.delete(id);
        return this.registry.closedByClient(id, 'DELETE');
      },
    });
    await server.connect(transport);
    this.transports.set(sessionId, transport);
    this.registry.add({
      sessionId,
      kind: 'http',
      userId: caller.principal.userId,
      parentSessionId: caller.principal.sessionId || null,
      credential: credentialOf(caller),
      contextId: caller.contextId,
      server,
      close: () => {
        this.transports.delete(sessionId);
        transport.close().catch((error: unknown) => this.logger.debug({ err: error }, 'Closing an MCP session transport failed'));
      },
    });
    const response = await transport.handleRequest(request, { authInfo: authInfoOf(sessionCaller), parsedBody: message });
    if (response.status !== 200 || transport.sessionId !== sessionId) {
      await this.registry.abandon(sessionId, caller.principal.userId, 'initialize_refused');
    }
    return response;
  }
}

function sessionNotFound(): Response {
  return jsonRpcErrorResponse(404, JsonRpcCode.SESSION_NOT_FOUND, 'Session not found');
}
