import type { INestApplicationContext } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { createServer } from 'node:http';
import type { Duplex } from 'node:stream';
import type { MessageMappingProperties } from '@nestjs/websockets';
import type { Observable } from 'rxjs';
import type { WebSocket, WebSocketServer } from 'ws';
import { matchPathTemplate } from './path-template';

/** Where the adapter leaves the values of a gateway path's `:params` for the gateway. */
export const UPGRADE_PARAMS = Symbol('mcp.upgradeParams');

export type UpgradeRequest = IncomingMessage & { [UPGRADE_PARAMS]?: Record<string, string> };

/**
 * Nest's `ws` adapter, with two changes. A gateway's `path` may contain `:param` segments (Nest's
 * own adapter compares paths literally, so `/api/v1/contexts/:id/mcp/ws` could not be served); the
 * values reach the gateway on the upgrade request. And incoming frames are left to the gateway
 * (no per-socket message binding):
 * MCP frames are JSON-RPC messages, not Nest's `{ event, data }` envelopes, so the gateway's
 * transport reads them instead of @SubscribeMessage handlers. An upgrade to any other path gets 404.
 */
export class McpWsAdapter extends WsAdapter {
  constructor(app?: INestApplicationContext | object) {
    super(app, { messageParser: () => undefined });
  }

  /**
   * Our gateways have no @SubscribeMessage handlers (the transport reads the frames), so there is
   * nothing to bind: Nest's adapter would still build an rxjs pipeline per socket (a few KB each,
   * held for the socket's life, and an event object per frame), which idle sessions pay for.
   */
  override bindMessageHandlers(
    client: WebSocket,
    handlers: MessageMappingProperties[],
    transform: (data: unknown) => Observable<unknown>,
  ): void {
    if (handlers.length === 0) return;
    super.bindMessageHandlers(client, handlers, transform);
  }

  protected override ensureHttpServerExists(port: number, httpServer: HttpServer = createServer()): HttpServer | undefined {
    if (this.httpServersRegistry.has(port)) return undefined;
    this.httpServersRegistry.set(port, httpServer);
    httpServer.on('upgrade', (request: UpgradeRequest, socket: Duplex, head: Buffer) => this.route(port, request, socket, head));
    return httpServer;
  }

  private route(port: number, request: UpgradeRequest, socket: Duplex, head: Buffer): void {
    let pathname: string;
    try {
      pathname = new URL(request.url ?? '/', 'ws://localhost').pathname;
    } catch {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const servers = (this.wsServersRegistry.get(port) ?? []) as Array<WebSocketServer & { path: string }>;
    for (const server of servers) {
      const params = matchPathTemplate(server.path, pathname);
      if (!params) continue;
      request[UPGRADE_PARAMS] = params;
      server.handleUpgrade(request, socket, head, (ws) => server.emit('connection', ws, request));
      return;
    }
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  }
}
