import { Module } from '@nestjs/common';
import { AuthModule } from '@app/auth';
import { RedisConnection } from '@app/redis';
import { SessionsModule } from '@app/sessions';
import { ToolsModule, UpstreamsModule } from '@app/tools';
import { OAuthModule } from '@app/oauth';
import { UsersModule } from '@app/users';
import { McpFederatedFeatures } from './features/mcp-federated-features';
import { McpHttpEndpoint } from './http/mcp-http.endpoint';
import { McpAuthorization } from './http/mcp-authorization';
import { OriginPolicy } from './http/origin-policy';
import { LegacySessionHandler } from './sessions/legacy-session.handler';
import { McpConnectionRegistry } from './sessions/mcp-connection.registry';
import { McpSessionRepository } from './sessions/mcp-session.repository';
import { McpTicketsController } from './tickets/mcp-tickets.controller';
import { TicketService } from './tickets/ticket.service';
import { InMemoryTicketStore, TicketStore } from './tickets/ticket.store';
import { RedisTicketStore } from './tickets/redis-ticket.store';
import { AgentRequestRelays } from './relay/agent-request-relay';
import { RequestStateSeal } from './relay/request-state.seal';
import { HeldCallForwarding } from './relay/held-call-forwarding';
import { HeldCalls } from './relay/held-calls';
import { McpServerBuilder } from './tools/mcp-server.builder';
import { McpToolIndex } from './tools/mcp-tool-index';
import { McpWsConnections } from './ws/mcp-ws.connections';
import { ContextMcpWsGateway, McpWsGateway } from './ws/mcp-ws.gateways';

/**
 * The MCP gateway: agents reach the catalogue's tools over Streamable HTTP (2026-07-28 and the
 * 2025 era) and WebSocket, at /api/v1/mcp and /api/v1/contexts/{id}/mcp, through the same
 * execution pipeline, identity, sessions and audit trail as REST, and through the same edge:
 * AuthModule's Authenticator and RequestRateLimiter, and core's ExecutionScopeResolver (provided
 * by the contexts library), each asked once per request or message. The WebSocket gateways need
 * McpWsAdapter installed on the application (`app.useWebSocketAdapter`).
 */
@Module({
  imports: [AuthModule, UsersModule, SessionsModule, ToolsModule, UpstreamsModule, OAuthModule],
  controllers: [McpTicketsController],
  providers: [
    OriginPolicy,
    McpAuthorization,
    {
      provide: TicketStore,
      inject: [RedisConnection],
      useFactory: (redis: RedisConnection) => (redis.enabled ? new RedisTicketStore(redis) : new InMemoryTicketStore()),
    },
    TicketService,
    McpToolIndex,
    McpFederatedFeatures,
    RequestStateSeal,
    AgentRequestRelays,
    HeldCalls,
    HeldCallForwarding,
    McpServerBuilder,
    McpSessionRepository,
    McpConnectionRegistry,
    LegacySessionHandler,
    McpHttpEndpoint,
    McpWsConnections,
    McpWsGateway,
    ContextMcpWsGateway,
  ],
})
export class McpGatewayModule {}
