import { BeforeApplicationShutdown, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { Server } from '@modelcontextprotocol/server';
import { AuditAction, AuditService } from '@app/audit';
import { ConnectionType, SessionService, SessionTerminatedEvent, SessionTerminationNotifier } from '@app/sessions';
import { McpFederatedFeatures } from '../features/mcp-federated-features';
import { contextIdOf, McpCaller } from '../tools/mcp-caller';
import { McpToolIndex } from '../tools/mcp-tool-index';
import { McpHandshake, McpSessionRepository } from './mcp-session.repository';
import { UnitOfWork } from '@app/database';

/** A live MCP connection that outlasts one request: a 2025-era HTTP session or a WebSocket. */
export interface LiveConnection {
  sessionId: string;
  kind: ConnectionType;
  userId: string;
  /** The session of the credential that opened it (login or API key): when that ends, this ends too. */
  parentSessionId: string | null;
  /** `jwt` or the API key id: a session is used with the credential kind that opened it. */
  credential: string;
  contextId: string | null;
  server: Server;
  /** Closes the transport (and for WebSockets the socket, with a close code and this reason). */
  close(reason: string): void;
}

/** What ending a session needs to know about it (a live connection, or a stored session). */
export type EndableSession = Pick<LiveConnection, 'sessionId' | 'kind' | 'userId'>;

/** Reasons recorded when the gateway ends an MCP session itself. */
export const MCP_SESSION_CLOSED = 'closed';
export const MCP_PARENT_ENDED = 'parent_session_ended';
export const MCP_SERVER_SHUTDOWN = 'server_shutdown';

export function credentialOf(caller: McpCaller): string {
  return caller.principal.apiKeyId ?? caller.principal.via;
}

/**
 * Every live MCP connection of this process, by session id. It opens and ends their `Session`
 * rows (audited, with the `mcp_sessions` row that lets any replica serve a 2025-era session),
 * closes a connection as soon as its session ends anywhere in the app (DELETE, POST
 * /sessions/{id}/terminate, logout, idle expiry, suspension, key revocation), ends the
 * connections a credential opened when the credential's own session ends, and tells every
 * connection `notifications/tools/list_changed` when the catalogue changes.
 *
 * A 2025-era HTTP connection here is only this replica's copy of a session that lives in the
 * database: `release` drops the copy and leaves the session running for the other replicas.
 */
@Injectable()
export class McpConnectionRegistry implements OnModuleInit, OnModuleDestroy, BeforeApplicationShutdown {
  private readonly logger = new Logger(McpConnectionRegistry.name);
  private readonly connections = new Map<string, LiveConnection>();
  private readonly byParent = new Map<string, Set<string>>();
  private readonly unsubscribers: Array<() => void> = [];
  private shuttingDown = false;

  constructor(
    private readonly unitOfWork: UnitOfWork,
    private readonly sessions: SessionService,
    private readonly notifier: SessionTerminationNotifier,
    private readonly audit: AuditService,
    private readonly index: McpToolIndex,
    private readonly store: McpSessionRepository,
    private readonly federated: McpFederatedFeatures,
  ) {}

  onModuleInit(): void {
    this.unsubscribers.push(this.notifier.onTerminated((event) => this.onTerminated(event)));
    this.unsubscribers.push(this.index.onChanged(() => this.broadcastToolsChanged()));
    this.unsubscribers.push(
      this.federated.onNotification((notification) => {
        for (const connection of this.connections.values()) this.federated.relay(connection.server, notification);
      }),
    );
  }

  onModuleDestroy(): void {
    for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
  }

  /**
   * Closes every connection. WebSocket sessions end with their sockets (the database is still
   * open here); 2025-era HTTP sessions stay open, for other replicas or this one after a restart.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    const all = [...this.connections.values()];
    if (all.length === 0) return;
    for (const connection of all) this.remove(connection.sessionId);
    for (const connection of all) connection.close('server shutting down');
    const open = all.filter((connection) => connection.kind === 'websocket');
    if (open.length === 0) return;
    try {
      await this.unitOfWork.run(async (manager) => {
        for (const connection of open) await this.sessions.end(manager, connection.sessionId, MCP_SERVER_SHUTDOWN, null);
      });
    } catch (error) {
      this.logger.warn({ err: error, sessions: open.length }, 'Could not end MCP sessions at shutdown; they expire when idle');
    }
  }

  /** From the start of shutdown on, no connection is taken on (it would outlive the last close). */
  get closing(): boolean {
    return this.shuttingDown;
  }

  get(sessionId: string): LiveConnection | undefined {
    return this.connections.get(sessionId);
  }

  /**
   * Opens the `Session` row of a new connection and its `mcp_sessions` row, audited in the same
   * transaction. `handshake`: the client's `initialize` params of a 2025-era HTTP session.
   */
  async open(caller: McpCaller, kind: ConnectionType, transport: string, handshake?: McpHandshake): Promise<string> {
    const { principal } = caller;
    return this.unitOfWork.run(async (manager) => {
      const session = await this.sessions.open(manager, {
        userId: principal.userId,
        connectionType: kind,
        ipAddress: caller.ipAddress,
        userAgent: caller.userAgent,
        contextId: contextIdOf(caller),
      });
      await this.store.insert(manager, {
        sessionId: session.id,
        transport,
        credential: credentialOf(caller),
        parentSessionId: principal.sessionId || null,
        handshake,
      });
      await this.audit.record(manager, {
        action: AuditAction.MCP_SESSION_OPENED,
        userId: principal.userId,
        resource: `session:${session.id}`,
        result: 'success',
        severity: 'info',
        ipAddress: caller.ipAddress,
        userAgent: caller.userAgent,
        details: {
          transport,
          contextId: contextIdOf(caller),
          via: principal.via,
          apiKeyId: principal.apiKeyId ?? null,
          // A token without a gateway session (an IdP's access token) has sessionId '': no parent.
          parentSessionId: principal.sessionId || null,
        },
      });
      return session.id;
    });
  }

  /** Registers a connection; false (and not registered) once shutdown has begun. */
  add(connection: LiveConnection): boolean {
    if (this.shuttingDown) return false;
    this.connections.set(connection.sessionId, connection);
    if (connection.parentSessionId) {
      let children = this.byParent.get(connection.parentSessionId);
      if (!children) this.byParent.set(connection.parentSessionId, (children = new Set()));
      children.add(connection.sessionId);
    }
    return true;
  }

  /**
   * The client ended the connection (DELETE, or closed its socket): forget it at once, so its id
   * answers 404 from now on, then end its session.
   */
  async closedByClient(sessionId: string, how: string): Promise<void> {
    const connection = this.remove(sessionId);
    if (!connection) return;
    connection.close('closed by client');
    await this.endSession(connection, MCP_SESSION_CLOSED, connection.userId, how);
  }

  /** Drops this replica's copy of a session and closes its streams; the session itself stays as it is. */
  release(sessionId: string, why: string): void {
    this.remove(sessionId)?.close(why);
  }

  /** Ends a stored session that has no connection here (e.g. one whose credential session ended elsewhere). */
  async end(session: EndableSession, reason: string, how: string): Promise<void> {
    this.release(session.sessionId, reason);
    await this.endSession(session, reason, null, how);
  }

  /** Ends a session this gateway opened but could not use (e.g. a refused initialize). */
  async abandon(sessionId: string, userId: string, why: string): Promise<void> {
    const connection = this.remove(sessionId);
    connection?.close(why);
    try {
      await this.unitOfWork.run((manager) => this.sessions.end(manager, sessionId, why, userId));
    } catch (error) {
      this.logger.warn({ err: error, sessionId }, 'Could not end an abandoned MCP session');
    }
  }

  private remove(sessionId: string): LiveConnection | undefined {
    const connection = this.connections.get(sessionId);
    if (!connection) return undefined;
    this.connections.delete(sessionId);
    if (connection.parentSessionId) {
      const children = this.byParent.get(connection.parentSessionId);
      children?.delete(sessionId);
      if (children?.size === 0) this.byParent.delete(connection.parentSessionId);
    }
    return connection;
  }

  private onTerminated(event: SessionTerminatedEvent): void {
    const connection = this.remove(event.sessionId);
    if (connection) {
      this.logger.log(
        { sessionId: event.sessionId, reason: event.reason, kind: connection.kind },
        'MCP session ended; closing its connection',
      );
      connection.close(`session ${event.reason}`);
    }
    const children = this.byParent.get(event.sessionId);
    if (!children) return;
    for (const childId of [...children]) {
      const child = this.connections.get(childId);
      if (!child) continue;
      // Its end is announced like any other, which closes the connection.
      this.endSession(child, MCP_PARENT_ENDED, event.endedBy, `parent session ${event.reason}`).catch((error: unknown) =>
        this.logger.warn({ err: error, sessionId: childId }, 'Could not end an MCP session whose credential session ended'),
      );
    }
  }

  private async endSession(connection: EndableSession, reason: string, endedBy: string | null, how: string): Promise<void> {
    await this.unitOfWork.run(async (manager) => {
      const ended = await this.sessions.end(manager, connection.sessionId, reason, endedBy);
      if (!ended) return;
      await this.audit.record(manager, {
        action: AuditAction.MCP_SESSION_CLOSED,
        userId: connection.userId,
        resource: `session:${connection.sessionId}`,
        result: 'success',
        severity: 'info',
        details: { kind: connection.kind, reason, how },
      });
    });
  }

  private broadcastToolsChanged(): void {
    for (const connection of this.connections.values()) {
      connection.server
        .sendToolListChanged()
        .catch((error: unknown) => this.logger.debug({ err: error }, 'tools/list_changed not delivered'));
    }
  }
}
