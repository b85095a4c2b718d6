import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import {
  AuthInfo,
  InitializeRequest,
  isInitializeRequest,
  Server,
  WebStandardStreamableHTTPServerTransport,
} from '@modelcontextprotocol/server';
import { BackgroundJob, BackgroundJobs, Clock } from '@app/core';
import { SessionService } from '@app/sessions';
import { JsonRpcCode, jsonRpcErrorResponse } from '../errors/mcp-errors';
import { contextIdOf, McpCaller } from '../tools/mcp-caller';
import { callerOfRequest, MCP_CALLER_KEY, McpServerBuilder } from '../tools/mcp-server.builder';
import { credentialOf, LiveConnection, MCP_PARENT_ENDED, MCP_SERVER_SHUTDOWN, McpConnectionRegistry } from './mcp-connection.registry';
import { McpHandshake, McpSessionRepository, StoredMcpSession } from './mcp-session.repository';

/** Sessions one process holds a copy of at most (each keeps a server and its streams in memory). */
const MAX_LEGACY_SESSIONS = 10_000;
/** A copy unused this long, with no request or stream open, is dropped: any replica rebuilds it on demand. */
const IDLE_COPY_MS = 5 * 60_000;
/** How often copies are checked: idle ones dropped, ended ones (e.g. by DELETE on another replica) closed. */
const SWEEP_MS = 30_000;
/** Larger `initialize` params are not stored: such a session is served only by the replica that opened it. */
const MAX_STORED_HANDSHAKE_CHARS = 64 * 1024;
const STREAMABLE_HTTP = 'streamable-http';
/** The id of the replayed `initialize`; its answer never leaves this process. */
const REPLAY_ID = 'replica-adoption';

export type ParsedBody = { ok: true; value: unknown } | { ok: false };

export function authInfoOf(caller: McpCaller): AuthInfo {
  return {
    token: '',
    clientId: caller.principal.apiKeyId ?? caller.principal.userId,
    scopes: caller.principal.permissions,
    extra: { [MCP_CALLER_KEY]: caller },
  };
}

type SessionOwner = Pick<LiveConnection, 'userId' | 'credential' | 'contextId'>;

/** This replica's copy of a session: the SDK's sessionful transport with its server. */
interface HeldSession {
  transport: WebStandardStreamableHTTPServerTransport;
  /** Requests being answered plus response streams still open: a copy in use is never dropped. */
  inUse: number;
  lastUsedMs: number;
}

/**
 * The 2025 era (2025-11-25, 2025-06-18, 2025-03-26): `initialize` opens one of our sessions, whose
 * id is the `Mcp-Session-Id`; the SDK's sessionful transport then serves its POSTs, its GET
 * stream and its DELETE. A session id that is unknown, ended, or not the caller's (user,
 * credential, context) answers 404 (the client starts over with `initialize`); a request without
 * one answers 400.
 *
 * Any replica serves any session: the session lives in the database (`sessions` and
 * `mcp_sessions`, with the client's `initialize` params), and a replica that gets a request for a
 * session it holds no copy of adopts it after the same ownership checks: it builds a server and
 * a transport whose session id is the existing one, replays the client's `initialize` and
 * `notifications/initialized` through the transport's public API (the SDK has no other way to
 * rebuild a session elsewhere: typescript-sdk issues #1658, #1882), then serves the request.
 * Copies are bounded (MAX_LEGACY_SESSIONS, least recently used idle copy dropped first), idle ones
 * are dropped, and a copy whose session ended elsewhere is closed at its next request (the
 * per-request `isActive`) or at the next sweep, whichever comes first. The 2026-07-28 era is
 * stateless and needs none of this.
 */
@Injectable()
export class LegacySessionHandler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(LegacySessionHandler.name);
  /** Least recently used first. */
  private readonly held = new Map<string, HeldSession>();
  private readonly adopting = new Map<string, Promise<HeldSession | undefined>>();
  private sweepJob: BackgroundJob | undefined;
  private sweeping = false;

  constructor(
    private readonly registry: McpConnectionRegistry,
    private readonly sessions: SessionService,
    private readonly builder: McpServerBuilder,
    private readonly store: McpSessionRepository,
    private readonly clock: Clock,
    private readonly jobs: BackgroundJobs,
  ) {}

  onApplicationBootstrap(): void {
    this.sweepJob = this.jobs.every('mcp.legacy-sessions.sweep', SWEEP_MS, () => this.sweep());
  }

  onApplicationShutdown(): void {
    this.sweepJob?.stop();
    this.sweepJob = undefined;
  }

  async handle(request: Request, caller: McpCaller, body: ParsedBody | undefined): Promise<Response> {
    const sessionId = request.headers.get('mcp-session-id');
    if (sessionId) return this.continueSession(request, caller, body, sessionId);
    if (request.method === 'POST' && body && !body.ok)
      return jsonRpcErrorResponse(400, JsonRpcCode.PARSE_ERROR, 'Parse error: the body is not valid JSON');
    if (request.method === 'POST' && body?.ok && isInitializeRequest(body.value)) return this.initialize(request, caller, body.value);
    return jsonRpcErrorResponse(400, JsonRpcCode.SERVER_ERROR, 'Bad Request: Mcp-Session-Id header is required');
  }

  private async continueSession(request: Request, caller: McpCaller, body: ParsedBody | undefined, sessionId: string): Promise<Response> {
    let held = this.held.get(sessionId);
    if (!held) {
      const adopted = await this.adopt(request, caller, sessionId);
      if (adopted instanceof Response) return adopted;
      held = adopted;
    }
    const connection = this.registry.get(sessionId);
    if (!held || connection?.kind !== 'http' || !belongsTo(connection, caller)) return sessionNotFound();
    if (!(await this.sessions.isActive(sessionId))) {
      // Ended here or on another replica, or idle past the timeout: drop this copy and its streams.
      this.drop(sessionId, 'session ended');
      return sessionNotFound();
    }
    const sessionCaller: McpCaller = { ...caller, principal: { ...caller.principal, sessionId } };
    return this.serve(sessionId, held, request, sessionCaller, body?.ok ? body.value : undefined);
  }

  private async initialize(request: Request, caller: McpCaller, message: InitializeRequest): Promise<Response> {
    if (this.registry.closing) return shuttingDown();
    if (!this.makeRoom()) return tooManySessions();
    const sessionId = await this.registry.open(caller, 'http', STREAMABLE_HTTP, storableHandshake(message));
    const sessionCaller: McpCaller = { ...caller, principal: { ...caller.principal, sessionId } };
    const { server, transport } = this.createCopy(sessionId, { replaying: false });
    await server.connect(transport);
    const held = this.hold(sessionId, { ...ownerOf(caller), parentSessionId: caller.principal.sessionId || null }, server, transport);
    if (!held) {
      await this.registry.abandon(sessionId, caller.principal.userId, MCP_SERVER_SHUTDOWN);
      return shuttingDown();
    }
    const response = await this.serve(sessionId, held, request, sessionCaller, message);
    if (response.status !== 200 || transport.sessionId !== sessionId) {
      await this.registry.abandon(sessionId, caller.principal.userId, 'initialize_refused');
    }
    return response;
  }

  /**
   * A copy of a session opened elsewhere (another replica, or this one before a restart), when
   * it is the caller's and still active; undefined (404) otherwise, a 503 when this process is
   * full or shutting down (a copy taken on then would keep its streams open past the last close).
   */
  private async adopt(request: Request, caller: McpCaller, sessionId: string): Promise<HeldSession | Response | undefined> {
    if (this.registry.closing) return shuttingDown();
    const stored = await this.store.find(sessionId);
    if (!stored?.active || stored.kind !== 'http' || stored.transport !== STREAMABLE_HTTP || !stored.handshake) return undefined;
    if (!belongsTo(stored, caller)) return undefined;
    if (!stored.parentActive) {
      // The credential's session ended where no copy of this one was held to hear of it.
      await this.registry
        .end(stored, MCP_PARENT_ENDED, 'parent session ended')
        .catch((error: unknown) =>
          this.logger.warn({ err: error, sessionId }, 'Could not end an MCP session whose credential session ended'),
        );
      return undefined;
    }
    let pending = this.adopting.get(sessionId);
    if (!pending) {
      if (!this.makeRoom()) return tooManySessions();
      pending = this.rebuild(request.url, stored, stored.handshake).finally(() => this.adopting.delete(sessionId));
      this.adopting.set(sessionId, pending);
    }
    const held = await pending;
    return held ?? (this.registry.closing ? shuttingDown() : undefined);
  }

  private async rebuild(url: string, stored: StoredMcpSession, handshake: McpHandshake): Promise<HeldSession | undefined> {
    const { sessionId } = stored;
    // The replayed handshake is not the client's traffic: it is not counted in the session.
    const replay = { replaying: true };
    const { server, transport } = this.createCopy(sessionId, replay);
    try {
      await server.connect(transport);
      const replayed = await replayHandshake(transport, url, sessionId, handshake);
      replay.replaying = false;
      if (!replayed) {
        this.logger.warn({ sessionId }, 'Could not rebuild an MCP session from its stored initialize');
        await transport.close();
        return undefined;
      }
    } catch (error) {
      await transport.close().catch(() => undefined);
      throw error;
    }
    const held = this.hold(sessionId, stored, server, transport);
    if (held) this.logger.debug({ sessionId }, 'MCP session adopted by this replica');
    return held;
  }

  private createCopy(sessionId: string, replay: { replaying: boolean }) {
    const server = this.builder.build(callerOfRequest, () => (replay.replaying ? null : sessionId));
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => sessionId,
      // DELETE: forget the copy first (the id answers 404 from now on), then end the session.
      onsessionclosed: (id) => {
        this.forget(id, transport);
        return this.registry.closedByClient(id, 'DELETE');
      },
    });
    return { server, transport };
  }

  private hold(
    sessionId: string,
    owner: SessionOwner & Pick<LiveConnection, 'parentSessionId'>,
    server: Server,
    transport: WebStandardStreamableHTTPServerTransport,
  ): HeldSession | undefined {
    const added = this.registry.add({
      sessionId,
      kind: 'http',
      userId: owner.userId,
      parentSessionId: owner.parentSessionId,
      credential: owner.credential,
      contextId: owner.contextId,
      server,
      close: () => this.forget(sessionId, transport),
    });
    if (!added) {
      this.forget(sessionId, transport);
      return undefined;
    }
    const held: HeldSession = { transport, inUse: 0, lastUsedMs: this.clock.nowMs() };
    this.held.set(sessionId, held);
    return held;
  }

  private async serve(sessionId: string, held: HeldSession, request: Request, caller: McpCaller, parsedBody: unknown): Promise<Response> {
    held.inUse++;
    held.lastUsedMs = this.clock.nowMs();
    if (this.held.get(sessionId) === held) {
      this.held.delete(sessionId);
      this.held.set(sessionId, held);
    }
    const release = () => {
      held.inUse--;
      held.lastUsedMs = this.clock.nowMs();
    };
    let response: Response;
    try {
      response = await held.transport.handleRequest(request, { authInfo: authInfoOf(caller), parsedBody });
    } catch (error) {
      release();
      throw error;
    }
    if (!response.body || !(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      release();
      return response;
    }
    return onBodyEnd(response, release);
  }

  /** Room for one more copy: drops the least recently used copy not in use if needed. */
  private makeRoom(): boolean {
    if (this.held.size + this.adopting.size < MAX_LEGACY_SESSIONS) return true;
    for (const [sessionId, held] of this.held) {
      if (held.inUse > 0) continue;
      this.drop(sessionId, 'evicted');
      return true;
    }
    return false;
  }

  /** Drops idle copies, and copies of sessions that ended elsewhere (closing their streams). */
  private async sweep(): Promise<void> {
    if (this.sweeping || this.held.size === 0) return;
    this.sweeping = true;
    try {
      const now = this.clock.nowMs();
      for (const [sessionId, held] of [...this.held]) {
        if (held.inUse === 0 && now - held.lastUsedMs >= IDLE_COPY_MS) this.drop(sessionId, 'idle');
      }
      for (const sessionId of await this.store.inactiveAmong([...this.held.keys()])) this.drop(sessionId, 'session ended');
    } finally {
      this.sweeping = false;
    }
  }

  /** Drops this replica's copy; the session itself is left as it is. */
  private drop(sessionId: string, why: string): void {
    const held = this.held.get(sessionId);
    this.registry.release(sessionId, why);
    if (held) this.forget(sessionId, held.transport);
  }

  private forget(sessionId: string, transport: WebStandardStreamableHTTPServerTransport): void {
    if (this.held.get(sessionId)?.transport === transport) this.held.delete(sessionId);
    transport.close().catch((error: unknown) => this.logger.debug({ err: error }, 'Closing an MCP session transport failed'));
  }
}

function ownerOf(caller: McpCaller): SessionOwner {
  return { userId: caller.principal.userId, credential: credentialOf(caller), contextId: contextIdOf(caller) };
}

/** The same user, with the same credential (`jwt` or that API key), at the same endpoint. */
function belongsTo(owner: SessionOwner, caller: McpCaller): boolean {
  const asked = ownerOf(caller);
  return owner.userId === asked.userId && owner.credential === asked.credential && owner.contextId === asked.contextId;
}

/** What the client asked in `initialize`, to replay elsewhere; undefined when too large to keep. */
function storableHandshake(message: InitializeRequest): McpHandshake | undefined {
  const { protocolVersion, capabilities, clientInfo } = message.params;
  const handshake: McpHandshake = { protocolVersion, capabilities, clientInfo };
  return JSON.stringify(handshake).length <= MAX_STORED_HANDSHAKE_CHARS ? handshake : undefined;
}

/** Runs the client's handshake again through a fresh transport, so it serves the session as the first one did. */
async function replayHandshake(
  transport: WebStandardStreamableHTTPServerTransport,
  url: string,
  sessionId: string,
  handshake: McpHandshake,
): Promise<boolean> {
  const headers = { accept: 'application/json, text/event-stream', 'content-type': 'application/json' };
  const initialize = await transport.handleRequest(new Request(url, { method: 'POST', headers }), {
    parsedBody: { jsonrpc: '2.0', id: REPLAY_ID, method: 'initialize', params: handshake },
  });
  if (initialize.status !== 200 || !answersReplay(await initialize.text())) return false;
  const initialized = await transport.handleRequest(
    new Request(url, { method: 'POST', headers: { ...headers, 'mcp-session-id': sessionId } }),
    {
      parsedBody: { jsonrpc: '2.0', method: 'notifications/initialized' },
    },
  );
  return initialized.status === 202 && transport.sessionId === sessionId;
}

/** Whether an SSE body carries the successful answer to the replayed `initialize`. */
function answersReplay(sse: string): boolean {
  for (const line of sse.split('\n')) {
    if (!line.startsWith('data:')) continue;
    try {
      const message = JSON.parse(line.slice('data:'.length)) as { id?: unknown; result?: unknown };
      if (message.id === REPLAY_ID && message.result !== undefined) return true;
    } catch {
      // not a JSON-RPC message
    }
  }
  return false;
}

/** The same response, calling `onEnd` once its body is read to the end, fails, or is cancelled. */
function onBodyEnd(response: Response, onEnd: () => void): Response {
  const reader = response.body!.getReader();
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    onEnd();
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          end();
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        end();
        controller.error(error);
      }
    },
    cancel(reason) {
      end();
      return reader.cancel(reason);
    },
  });
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}

function sessionNotFound(): Response {
  return jsonRpcErrorResponse(404, JsonRpcCode.SESSION_NOT_FOUND, 'Session not found');
}

function shuttingDown(): Response {
  return jsonRpcErrorResponse(503, JsonRpcCode.SERVER_ERROR, 'Server shutting down; retry', { 'retry-after': '1' });
}

function tooManySessions(): Response {
  return jsonRpcErrorResponse(
    503,
    JsonRpcCode.SERVER_ERROR,
    'Too many open MCP sessions; use protocol version 2026-07-28 (stateless) or retry later',
    {
      'retry-after': '30',
    },
  );
}
