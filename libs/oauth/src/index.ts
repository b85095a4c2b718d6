export { OAuthModule } from './oauth.module';
export { OAuthIssuer } from './provider/oauth-issuer';
export { MCP_READ_SCOPE, MCP_SCOPE, OFFLINE_ACCESS, scopeRequiredFor } from './oauth-scopes';
export { mcpResourceUrl } from './mcp-resources';
export { OAUTH_STORE_TABLE_COLUMNS } from './store/oauth-store.repository';
export { OAUTH_GRANT_TABLE_COLUMNS } from './grants/oauth-grant.repository';
