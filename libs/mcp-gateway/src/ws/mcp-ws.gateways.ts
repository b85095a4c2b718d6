import { OnGatewayConnection, OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import type { WebSocket, WebSocketServer } from 'ws';
import { CONTEXT_MCP_WS_PATH, MCP_WS_PATH } from '../http/mcp-paths';
import type { UpgradeRequest } from './mcp-ws.adapter';
import { McpWsConnections } from './mcp-ws.connections';

/** MCP over WebSocket for every tool the caller may call: /api/v1/mcp/ws. */
@WebSocketGateway({ path: MCP_WS_PATH, ...McpWsConnections.serverOptions })
export class McpWsGateway implements OnGatewayInit<WebSocketServer>, OnGatewayConnection<WebSocket> {
  constructor(private readonly connections: McpWsConnections) {}

  afterInit(server: WebSocketServer): void {
    this.connections.attach(server);
  }

  handleConnection(socket: WebSocket, request: UpgradeRequest): void {
    this.connections.accept(socket, request);
  }
}

/** MCP over WebSocket for one context's tools: /api/v1/contexts/{id}/mcp/ws. */
@WebSocketGateway({ path: CONTEXT_MCP_WS_PATH, ...McpWsConnections.serverOptions })
export class ContextMcpWsGateway implements OnGatewayInit<WebSocketServer>, OnGatewayConnection<WebSocket> {
  constructor(private readonly connections: McpWsConnections) {}

  afterInit(server: WebSocketServer): void {
    this.connections.attach(server);
  }

  handleConnection(socket: WebSocket, request: UpgradeRequest): void {
    this.connections.accept(socket, request);
  }
}
