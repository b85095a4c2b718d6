export { McpConnectionRegistry } from './sessions/mcp-connection.registry';
export { McpWsAdapter } from './ws/mcp-ws.adapter';
export { McpGatewayModule } from './mcp-gateway.module';
