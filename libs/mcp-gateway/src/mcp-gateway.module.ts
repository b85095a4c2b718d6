import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { AuthModule } from '@app/auth';
import { ContextAccessModule } from '@app/contexts';
import { RedisConnection } from '@app/redis';
import { SessionsModule } from '@app/sessions';
import { ToolsModule } from '@app/tools';
import { UsersModule } from '@app/users';
import { BoundContextGuard } from './http/bound-context.guard';
import { McpHttpEndpoint } from './http/mcp-http.endpoint';
import { McpScopeResolver } from './http/mcp-scope.resolver';
import { OriginPolicy } from './http/origin-policy';
import { LegacySessionHandler } from './sessions/legacy-session.handler';
import { McpConnectionRegistry } from './sessions/mcp-connection.registry';
import { McpSessionRepository } from './sessions/mcp-session.repository';
import { McpTicketsController } from './tickets/mcp-tickets.controller';
import { TicketService } from './tickets/ticket.service';
import { InMemoryTicketStore, TicketStore } from './tickets/ticket.store';
import { RedisTicketStore } from './tickets/redis-ticket.store';
import { McpServerBuilder } from './tools/mcp-server.builder';
import { McpToolIndex } from './tools/mcp-tool-index';
import { McpWsConnections } from './ws/mcp-ws.connections';
import { ContextMcpWsGateway, McpWsGateway } from './ws/mcp-ws.gateways';
import { PrincipalRefresher } from './ws/principal-refresher';

/**
 * The MCP gateway: agents reach the catalogue's tools over Streamable HTTP (2026-07-28 and the
 * 2025 era) and WebSocket, at /api/v1/mcp and /api/v1/contexts/{id}/mcp, through the same
 * execution pipeline, identity, sessions and audit trail as REST. The WebSocket gateways need
 * McpWsAdapter installed on the application (`app.useWebSocketAdapter`).
 */
@Module({
  imports: [AuthModule, UsersModule, SessionsModule, ToolsModule, ContextAccessModule],
  controllers: [McpTicketsController],
  providers: [
    OriginPolicy,
    {
      provide: TicketStore,
      inject: [RedisConnection],
      useFactory: (redis: RedisConnection) => (redis.enabled ? new RedisTicketStore(redis) : new InMemoryTicketStore()),
    },
    TicketService,
    McpToolIndex,
    McpServerBuilder,
    McpScopeResolver,
    McpSessionRepository,
    McpConnectionRegistry,
    LegacySessionHandler,
    McpHttpEndpoint,
    PrincipalRefresher,
    McpWsConnections,
    McpWsGateway,
    ContextMcpWsGateway,
    // After AuthModule's authentication guard (imported first), which sets the principal.
    { provide: APP_GUARD, useClass: BoundContextGuard },
  ],
})
export class McpGatewayModule {}
