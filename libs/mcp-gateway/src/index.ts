export { McpConnectionRegistry } from './sessions/mcp-connection.registry';
export { MCP_SESSIONS_COLUMNS } from './sessions/mcp-session.repository';
export { McpWsAdapter } from './ws/mcp-ws.adapter';
export { McpGatewayModule } from './mcp-gateway.module';
