import { Injectable, Logger, OnModuleDestroy, OnModuleInit, Optional } from '@nestjs/common';
import { JSONRPCMessage, ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import type { OutgoingHttpHeaders } from 'node:http';
import type { WebSocket, WebSocketServer } from 'ws';
import {
  AppException,
  BackgroundJob,
  BackgroundJobs,
  Correlation,
  ExecutionScopeResolver,
  newRequestId,
  Principal,
  traceIdFor,
  unsafeStrings,
  userAgentOf,
} from '@app/core';
import { activeTraceId } from '@app/telemetry';
import { Authenticator, hasCredentialInUrl, RequestRateLimiter } from '@app/auth';
import { SessionService } from '@app/sessions';
import { JsonRpcCode, McpRefusal, messageRefusal, protocolErrorOf, refusal, refusalOf, upgradeRefusal } from '../errors/mcp-errors';
import { jsonRpcMethodsOf, McpAuthorization } from '../http/mcp-authorization';
import { MAX_MESSAGE_BYTES, PROTECTED_RESOURCE_PATH } from '../http/mcp-paths';
import { OriginPolicy } from '../http/origin-policy';
import { credentialOf, MCP_SERVER_SHUTDOWN, McpConnectionRegistry } from '../sessions/mcp-connection.registry';
import { TicketService } from '../tickets/ticket.service';
import { contextIdOf, McpCaller, mcpCallerOf } from '../tools/mcp-caller';
import { McpServerBuilder } from '../tools/mcp-server.builder';
import { UPGRADE_PARAMS, UpgradeRequest } from './mcp-ws.adapter';
import { WebSocketServerTransport } from './websocket-server.transport';

export const MCP_SUBPROTOCOL = 'mcp';
/** Close code for a socket whose session ended (terminated, expired, revoked, logged out). */
export const SESSION_ENDED_CLOSE_CODE = 4001;
/** Close code for a socket whose user or credential no longer grants access. */
export const ACCESS_REVOKED_CLOSE_CODE = 4003;
/** RFC 6455 "going away": this server is stopping; the session is over, reconnecting reaches another replica. */
export const SERVER_GOING_AWAY_CLOSE_CODE = 1001;

const ACCEPTED = Symbol('mcp.acceptedUpgrade');
const PING_INTERVAL_MS = 30_000;
interface Accepted {
  caller: McpCaller;
  /** The credential's principal as authenticated at the upgrade (re-checked per message). */
  principal: Principal;
  sessionId: string;
  /** The origin the upgrade came to (for the step-up challenge's metadata URL). */
  base: string;
}

type VerifyCallback = (result: boolean, code?: number, message?: string, headers?: OutgoingHttpHeaders) => void;

/** An upgrade refused before the edge's services ran (shutdown, Origin, subprotocol, URL). */
class Refused extends Error {
  constructor(readonly refusal: McpRefusal) {
    super(refusal.message);
  }
}

/**
 * MCP over WebSocket (subprotocol `mcp`): the upgrade is checked like an HTTP request (Host and
 * Origin, then a single-use `?ticket=` or an `Authorization: Bearer` header, the general rate
 * limit and the execution scope: the same Authenticator, RequestRateLimiter and
 * ExecutionScopeResolver as REST); every message counts against the same rate limit, and each
 * tools/list and tools/call re-checks the principal and the context;
 * and each accepted socket is one `Session` (websocket) served by its own SDK server until the
 * client leaves or the session ends, which closes the socket with 4001 and the reason.
 */
@Injectable()
export class McpWsConnections implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(McpWsConnections.name);
  private readonly alive = new Map<WebSocket, boolean>();
  private pinger: BackgroundJob | undefined;
  private stopping = false;

  constructor(
    private readonly origins: OriginPolicy,
    private readonly tickets: TicketService,
    private readonly authenticator: Authenticator,
    private readonly limiter: RequestRateLimiter,
    private readonly scopes: ExecutionScopeResolver,
    private readonly registry: McpConnectionRegistry,
    private readonly builder: McpServerBuilder,
    private readonly sessions: SessionService,
    private readonly jobs: BackgroundJobs = new BackgroundJobs(),
    @Optional() private readonly authorization?: McpAuthorization,
  ) {}

  onModuleInit(): void {
    // Half-open sockets (a peer that vanished) are found by ping and ended.
    this.pinger = this.jobs.every('mcp.websocket.ping', PING_INTERVAL_MS, () => {
      for (const [socket, alive] of this.alive) {
        if (!alive) {
          socket.terminate();
          continue;
        }
        this.alive.set(socket, false);
        socket.ping();
      }
    });
  }

  /** Runs before the registry closes every connection at shutdown (beforeApplicationShutdown). */
  onModuleDestroy(): void {
    this.stopping = true;
    this.pinger?.stop();
  }

  /** Options every MCP WebSocket server is created with. */
  static readonly serverOptions = { maxPayload: MAX_MESSAGE_BYTES, perMessageDeflate: false };

  /** Installs the upgrade checks on a gateway's ws server (ws reads these options per upgrade). */
  attach(server: WebSocketServer): void {
    server.options.verifyClient = (info: { req: UpgradeRequest }, done: VerifyCallback) => {
      this.verify(info.req).then(
        () => done(true),
        (error: unknown) => {
          // As on the REST routes: 401/403/404/429 as the edge decided; the database or Redis (a
          // ticket) being away is a 503 to retry, not a server fault.
          const refused = error instanceof Refused ? error.refusal : refusalOf(error);
          if (!refused) {
            this.logger.error({ err: error }, 'MCP WebSocket upgrade failed');
            return done(false, 500, 'Internal Server Error');
          }
          if (refused.status === 503) this.logger.warn({ err: error }, 'MCP WebSocket upgrade refused: a dependency is unavailable');
          const { status, body, headers } = upgradeRefusal(refused);
          done(false, status, body, headers);
        },
      );
    };
    server.options.handleProtocols = (protocols: Set<string>) => (protocols.has(MCP_SUBPROTOCOL) ? MCP_SUBPROTOCOL : false);
  }

  /** A socket that passed `verify`: its session is open; serve it. */
  accept(socket: WebSocket, request: UpgradeRequest): void {
    const accepted = (request as UpgradeRequest & { [ACCEPTED]?: Accepted })[ACCEPTED];
    if (!accepted) {
      socket.close(1011, 'not authenticated');
      return;
    }
    const { sessionId } = accepted;
    const transport: WebSocketServerTransport = new WebSocketServerTransport(socket, (message): Promise<boolean> =>
      this.admit(accepted, message, transport),
    );
    const server = this.builder.build(
      () => this.currentCaller(accepted, socket),
      () => sessionId,
    );
    const added = this.registry.add({
      sessionId,
      kind: 'websocket',
      userId: accepted.caller.principal.userId,
      parentSessionId: accepted.principal.sessionId || null,
      credential: credentialOf(accepted.caller),
      contextId: contextIdOf(accepted.caller),
      server,
      close: (reason) => socket.close(this.stopping ? SERVER_GOING_AWAY_CLOSE_CODE : SESSION_ENDED_CLOSE_CODE, reason.slice(0, 120)),
    });
    if (!added) {
      // Its upgrade was being checked when shutdown closed every connection: it would outlive the shutdown.
      socket.close(SERVER_GOING_AWAY_CLOSE_CODE, 'server shutting down');
      void this.registry.abandon(sessionId, accepted.caller.principal.userId, MCP_SERVER_SHUTDOWN);
      return;
    }
    this.alive.set(socket, true);
    socket.on('pong', () => this.alive.set(socket, true));
    socket.on('close', () => {
      this.alive.delete(socket);
      void server.close().catch(() => undefined);
      this.registry
        .closedByClient(sessionId, 'websocket close')
        .catch((error: unknown) => this.logger.warn({ err: error, sessionId }, 'Could not end a closed WebSocket session'));
    });
    server.connect(transport).catch((error: unknown) => {
      this.logger.error({ err: error, sessionId }, 'MCP WebSocket server did not start');
      socket.close(1011, 'internal error');
    });
  }

  private async verify(request: UpgradeRequest): Promise<void> {
    if (this.registry.closing) throw refusedWith(503, 'Service Unavailable: shutting down', { 'Retry-After': '1' });
    const origin = this.origins.check(request.headers.host, request.headers.origin);
    if (origin) throw refusedWith(403, 'Forbidden');
    const offered = String(request.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((protocol) => protocol.trim());
    if (!offered.includes(MCP_SUBPROTOCOL)) throw refusedWith(400, 'Bad Request: subprotocol "mcp" required');

    const url = new URL(request.url ?? '/', 'ws://localhost');
    // The same rule as every HTTP route's params and query: no NUL or lone surrogate reaches a lookup.
    if (unsafeStrings(request[UPGRADE_PARAMS]).length > 0 || unsafeStrings(Object.fromEntries(url.searchParams)).length > 0) {
      throw refusedWith(400, 'Bad Request: a path or query value holds NUL or a lone surrogate');
    }
    const base = this.baseUrl(request);
    const contextId = request[UPGRADE_PARAMS]?.id;
    const challenge = {
      'WWW-Authenticate':
        this.authorization?.challenge(base, contextId, false) ?? `Bearer resource_metadata="${base}${PROTECTED_RESOURCE_PATH}"`,
    };
    if (hasCredentialInUrl(url.searchParams)) {
      throw refusedWith(401, 'Unauthorized: credentials are not accepted in the URL; use a ticket', challenge);
    }
    const ipAddress = request.socket.remoteAddress ?? null;
    const client = { ipAddress, userAgent: userAgentOf(request.headers['user-agent']) };
    const resource = this.authorization?.resource(base, contextId);
    const principal = await this.authenticate(request, url, client, challenge, resource);
    try {
      // An MCP scope opens the socket; each message's method is checked against the token's scopes (admit).
      this.authorization?.requireScope(principal, base, contextId);
    } catch (error) {
      const refused = refusalOf(error);
      if (refused) throw new Refused(refused);
      throw error;
    }
    // The upgrade is a request like any other: it counts against the caller's general budget.
    await this.limiter.consume('default', RequestRateLimiter.trackerOf(principal, ipAddress ?? ''));
    const caller = mcpCallerOf(await this.scopes.resolve(principal, request[UPGRADE_PARAMS]?.id), client);
    const sessionId = await this.registry.open(caller, 'websocket', 'websocket');
    const accepted: Accepted = { caller: { ...caller, principal: { ...principal, sessionId } }, principal, sessionId, base };
    (request as UpgradeRequest & { [ACCEPTED]?: Accepted })[ACCEPTED] = accepted;
  }

  /** A ticket (clients that cannot set headers) or an Authorization header. */
  private async authenticate(
    request: UpgradeRequest,
    url: URL,
    client: { ipAddress: string | null; userAgent: string | null },
    challenge: Record<string, string>,
    resource: string | undefined,
  ): Promise<Principal> {
    const ticket = url.searchParams.get('ticket');
    if (ticket !== null) {
      const issuedTo = await this.tickets.redeem(ticket);
      const principal = issuedTo && (await this.authenticator.refresh(issuedTo));
      if (!principal) throw refusedWith(401, 'Unauthorized: invalid, used or expired ticket', challenge);
      return principal;
    }
    if (typeof request.headers.authorization !== 'string')
      throw refusedWith(401, 'Unauthorized: a ticket or a bearer token is required', challenge);
    try {
      // The query was checked above (no credential in the URL).
      return await this.authenticator.authenticate({ authorization: request.headers.authorization, query: {}, client, use: { resource } });
    } catch (error) {
      const refused = refusalOf(error);
      if (refused?.status === 401) throw new Refused({ ...refused, headers: { ...refused.headers, ...challenge } });
      throw error;
    }
  }

  /**
   * Each message is a request to the general rate limit (the same budget as the caller's REST and
   * MCP HTTP requests) and, with an OAuth token, needs the scope its method requires (a tools/call
   * with an mcp:read token is refused as on HTTP: 403 insufficient_scope, the scope in the data):
   * a refused one is answered with the mapper's JSON-RPC error and not served.
   */
  private async admit(accepted: Accepted, message: JSONRPCMessage, transport: WebSocketServerTransport): Promise<boolean> {
    try {
      await this.limiter.consume('default', RequestRateLimiter.trackerOf(accepted.principal, ''));
      this.authorization?.requireScope(
        accepted.principal,
        accepted.base,
        contextIdOf(accepted.caller) ?? undefined,
        jsonRpcMethodsOf(message),
      );
      return true;
    } catch (error) {
      const refused = refusalOf(error) ?? refusal(500, JsonRpcCode.SERVER_ERROR, 'Internal error');
      if (refused.status >= 500) this.logger.warn({ err: error }, 'MCP WebSocket message refused');
      const answer = messageRefusal(message, refused);
      if (answer) await transport.send(answer).catch(() => undefined);
      return false;
    }
  }

  /** The caller as of now: refused (and the socket closed) once the user or credential lost access. */
  private async currentCaller(accepted: Accepted, socket: WebSocket): Promise<McpCaller> {
    const principal = await this.authenticator.refresh(accepted.principal);
    if (!principal || !(await this.sessions.isActive(accepted.sessionId))) {
      socket.close(ACCESS_REVOKED_CLOSE_CODE, 'access revoked');
      throw new ProtocolError(ProtocolErrorCode.InvalidRequest, 'Access revoked');
    }
    const inSession = { ...principal, sessionId: accepted.sessionId };
    // Each message is a request of its own for the log: its own id, and its span's trace id while tracing runs.
    const correlation: Correlation = {
      reqId: newRequestId(),
      traceId: activeTraceId() ?? traceIdFor(undefined),
      userId: principal.userId,
      sessionId: accepted.sessionId,
    };
    const contextId = accepted.caller.context?.id;
    if (contextId === undefined) return { ...accepted.caller, principal: inSession, correlation };
    // The context may have been archived (or its tools changed) since the upgrade: this message's scope.
    try {
      const scope = await this.scopes.resolve(principal, contextId);
      return mcpCallerOf({ principal: inSession, context: scope.context, correlation }, accepted.caller);
    } catch (error) {
      if (!(error instanceof AppException)) throw error;
      throw protocolErrorOf(error);
    }
  }

  private baseUrl(request: UpgradeRequest): string {
    const secure = (request.socket as { encrypted?: boolean }).encrypted === true;
    return `${secure ? 'https' : 'http'}://${request.headers.host ?? 'localhost'}`;
  }
}

function refusedWith(status: number, message: string, headers: Record<string, string> = {}): Refused {
  return new Refused(refusal(status, status === 401 ? JsonRpcCode.UNAUTHORIZED : JsonRpcCode.SERVER_ERROR, message, headers));
}
