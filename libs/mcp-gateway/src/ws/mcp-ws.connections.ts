import { Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/server';
import type { OutgoingHttpHeaders } from 'node:http';
import type { WebSocket, WebSocketServer } from 'ws';
import { AppException, BackgroundJob, BackgroundJobs, isDatabaseUnavailable, Principal, unsafeStrings, userAgentOf } from '@app/core';
import { AuthenticationGuard } from '@app/auth';
import { SessionService } from '@app/sessions';
import type { FastifyRequest } from 'fastify';
import { MAX_MESSAGE_BYTES, PROTECTED_RESOURCE_PATH } from '../http/mcp-paths';
import { McpScopeResolver } from '../http/mcp-scope.resolver';
import { OriginPolicy } from '../http/origin-policy';
import { credentialOf, MCP_SERVER_SHUTDOWN, McpConnectionRegistry } from '../sessions/mcp-connection.registry';
import { TicketService } from '../tickets/ticket.service';
import type { McpCaller } from '../tools/mcp-caller';
import { McpServerBuilder } from '../tools/mcp-server.builder';
import { UPGRADE_PARAMS, UpgradeRequest } from './mcp-ws.adapter';
import { PrincipalRefresher } from './principal-refresher';
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
/** Query parameters that would carry a bearer token or API key: never accepted in a URL. */
const URL_CREDENTIALS = ['access_token', 'token', 'api_key', 'apikey', 'api-key'];

interface Accepted {
  caller: McpCaller;
  /** The credential's principal as authenticated at the upgrade (re-checked per message). */
  principal: Principal;
  sessionId: string;
}

type VerifyCallback = (result: boolean, code?: number, message?: string, headers?: OutgoingHttpHeaders) => void;

class Refused extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: OutgoingHttpHeaders = {},
  ) {
    super(message);
  }
}

/**
 * MCP over WebSocket (subprotocol `mcp`): the upgrade is checked like an HTTP request (Host and
 * Origin, then a single-use `?ticket=` or an `Authorization: Bearer` header, then the context),
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
    private readonly guard: AuthenticationGuard,
    private readonly scopes: McpScopeResolver,
    private readonly registry: McpConnectionRegistry,
    private readonly builder: McpServerBuilder,
    private readonly refresher: PrincipalRefresher,
    private readonly sessions: SessionService,
    private readonly jobs: BackgroundJobs = new BackgroundJobs(),
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
          if (error instanceof Refused) return done(false, error.status, error.message, error.headers);
          // As on the REST routes: the database being away is a 503 to retry, not a server fault.
          if (isDatabaseUnavailable(error)) {
            this.logger.warn({ err: error }, 'MCP WebSocket upgrade refused: database unavailable');
            return done(false, 503, 'Service Unavailable', { 'Retry-After': '5' });
          }
          // A ticket cannot be checked while Redis is away (RedisTicketStore): retry, not a fault.
          if (error instanceof AppException && error.getStatus() === 503) {
            return done(false, 503, 'Service Unavailable', { 'Retry-After': error.headers['retry-after'] ?? '5' });
          }
          this.logger.error({ err: error }, 'MCP WebSocket upgrade failed');
          done(false, 500, 'Internal Server Error');
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
    const transport = new WebSocketServerTransport(socket);
    const server = this.builder.build(() => this.currentCaller(accepted, socket), () => sessionId);
    const added = this.registry.add({
      sessionId,
      kind: 'websocket',
      userId: accepted.caller.principal.userId,
      parentSessionId: accepted.principal.sessionId || null,
      credential: credentialOf(accepted.caller),
      contextId: accepted.caller.contextId,
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
      this.registry.closedByClient(sessionId, 'websocket close').catch((error: unknown) =>
        this.logger.warn({ err: error, sessionId }, 'Could not end a closed WebSocket session'),
      );
    });
    server.connect(transport).catch((error: unknown) => {
      this.logger.error({ err: error, sessionId }, 'MCP WebSocket server did not start');
      socket.close(1011, 'internal error');
    });
  }

  private async verify(request: UpgradeRequest): Promise<void> {
    if (this.registry.closing) throw new Refused(503, 'Service Unavailable: shutting down', { 'Retry-After': '1' });
    const refusal = this.origins.check(request.headers.host, request.headers.origin);
    if (refusal) throw new Refused(403, 'Forbidden');
    const offered = String(request.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((protocol) => protocol.trim());
    if (!offered.includes(MCP_SUBPROTOCOL)) throw new Refused(400, 'Bad Request: subprotocol "mcp" required');

    const url = new URL(request.url ?? '/', 'ws://localhost');
    // The same rule as every HTTP route's params and query: no NUL or lone surrogate reaches a lookup.
    if (unsafeStrings(request[UPGRADE_PARAMS]).length > 0 || unsafeStrings(Object.fromEntries(url.searchParams)).length > 0) {
      throw new Refused(400, 'Bad Request: a path or query value holds NUL or a lone surrogate');
    }
    const challenge = { 'WWW-Authenticate': `Bearer resource_metadata="${this.baseUrl(request)}${PROTECTED_RESOURCE_PATH}"` };
    if (URL_CREDENTIALS.some((name) => url.searchParams.has(name))) {
      throw new Refused(401, 'Unauthorized: credentials are not accepted in the URL; use a ticket', challenge);
    }
    const principal = await this.authenticate(request, url, challenge);
    let scope;
    try {
      scope = await this.scopes.resolve(principal, request[UPGRADE_PARAMS]?.id);
    } catch (error) {
      if (error instanceof AppException) throw new Refused(error.getStatus(), error.getStatus() === 404 ? 'Not Found' : 'Forbidden');
      throw error;
    }
    const ipAddress = request.socket.remoteAddress ?? null;
    const caller: McpCaller = { principal, ...scope, ipAddress, userAgent: userAgentOf(request.headers['user-agent']) };
    const sessionId = await this.registry.open(caller, 'websocket', 'websocket');
    const accepted: Accepted = { caller: { ...caller, principal: { ...principal, sessionId } }, principal, sessionId };
    (request as UpgradeRequest & { [ACCEPTED]?: Accepted })[ACCEPTED] = accepted;
  }

  /** A ticket (clients that cannot set headers) or an Authorization header. */
  private async authenticate(request: UpgradeRequest, url: URL, challenge: OutgoingHttpHeaders): Promise<Principal> {
    const ticket = url.searchParams.get('ticket');
    if (ticket !== null) {
      const issuedTo = await this.tickets.redeem(ticket);
      const principal = issuedTo && (await this.refresher.refresh(issuedTo));
      if (!principal) throw new Refused(401, 'Unauthorized: invalid, used or expired ticket', challenge);
      return principal;
    }
    if (typeof request.headers.authorization !== 'string') throw new Refused(401, 'Unauthorized: a ticket or a bearer token is required', challenge);
    const asFastify = { headers: request.headers, query: {}, ip: request.socket.remoteAddress ?? '' } as unknown as FastifyRequest;
    try {
      return await this.guard.authenticate(asFastify);
    } catch (error) {
      if (error instanceof AppException && error.getStatus() === 401) throw new Refused(401, 'Unauthorized', { ...challenge });
      throw error;
    }
  }

  /** The caller as of now: refused (and the socket closed) once the user or credential lost access. */
  private async currentCaller(accepted: Accepted, socket: WebSocket): Promise<McpCaller> {
    const principal = await this.refresher.refresh(accepted.principal);
    if (!principal || !(await this.sessions.isActive(accepted.sessionId))) {
      socket.close(ACCESS_REVOKED_CLOSE_CODE, 'access revoked');
      throw new ProtocolError(ProtocolErrorCode.InvalidRequest, 'Access revoked');
    }
    let scope = { contextId: accepted.caller.contextId, contextTools: accepted.caller.contextTools };
    if (scope.contextId) {
      try {
        scope = await this.scopes.resolve(principal, accepted.caller.contextId ?? undefined);
      } catch (error) {
        if (!(error instanceof AppException)) throw error;
        throw new ProtocolError(ProtocolErrorCode.InvalidRequest, error.message);
      }
    }
    return { ...accepted.caller, ...scope, principal: { ...principal, sessionId: accepted.sessionId } };
  }

  private baseUrl(request: UpgradeRequest): string {
    const secure = (request.socket as { encrypted?: boolean }).encrypted === true;
    return `${secure ? 'https' : 'http'}://${request.headers.host ?? 'localhost'}`;
  }
}
