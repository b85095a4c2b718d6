import { AppException, loadConfig, Principal } from '@app/core';
import type { OAuthIssuer } from '@app/oauth';
import { McpAuthorization } from './mcp-authorization';

describe('McpAuthorization', () => {
  const issuer = { value: 'https://gw.example.com' } as OAuthIssuer;
  const configured = new McpAuthorization(loadConfig({ OAUTH_ISSUER: 'https://gw.example.com' }), issuer);
  const principal = (via: Principal['via'], scopes?: string[]): Principal =>
    ({ userId: 'u', email: 'u@x', sessionId: 's', roles: ['user'], permissions: [], via, scopes }) as Principal;

  it('names each endpoint by the configured public origin, whatever Host the request used', () => {
    expect(configured.resource('http://10.0.0.5:3000')).toBe('https://gw.example.com/api/v1/mcp');
    expect(configured.resource('http://10.0.0.5:3000', 'ctx_1')).toBe('https://gw.example.com/api/v1/contexts/ctx_1/mcp');
    expect(configured.metadataUrl('http://x', 'ctx_1')).toBe(
      'https://gw.example.com/.well-known/oauth-protected-resource/api/v1/contexts/ctx_1/mcp',
    );
    expect(configured.metadata('http://x', 'ctx_1')).toMatchObject({
      resource: 'https://gw.example.com/api/v1/contexts/ctx_1/mcp',
      authorization_servers: ['https://gw.example.com'],
      scopes_supported: ['mcp:tools', 'mcp:read', 'offline_access'],
    });
  });

  it('asks for the MCP scope in the 401 challenge only while the authorization server is on', () => {
    expect(configured.challenge('http://x', undefined, true)).toBe(
      'Bearer resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource", scope="mcp:tools", error="invalid_token"',
    );
    const off = new McpAuthorization(loadConfig({ OAUTH_ENABLED: 'false' }), { value: undefined } as OAuthIssuer);
    expect(off.challenge('http://localhost:3000', undefined, false)).toBe(
      'Bearer resource_metadata="http://localhost:3000/.well-known/oauth-protected-resource"',
    );
    expect(off.metadata('http://localhost:3000').authorization_servers).toBeUndefined();
  });

  it('refuses an OAuth token without the MCP scope with a step-up challenge; other credentials pass', () => {
    let refused: unknown;
    try {
      configured.requireScope(principal('oauth', ['offline_access']), 'http://x');
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(AppException);
    expect((refused as AppException).getStatus()).toBe(403);
    expect((refused as AppException).headers['WWW-Authenticate']).toBe(
      'Bearer error="insufficient_scope", scope="mcp:tools", resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource"',
    );
    expect(() => configured.requireScope(principal('oauth', ['mcp:tools']), 'http://x')).not.toThrow();
    expect(() => configured.requireScope(principal('jwt'), 'http://x')).not.toThrow();
    expect(() => configured.requireScope(principal('api_key'), 'http://x')).not.toThrow();
  });

  it('lets an mcp:read token list and read, and asks it to step up to mcp:tools for a tool call', () => {
    const reader = principal('oauth', ['mcp:read', 'offline_access']);
    expect(() =>
      configured.requireScope(reader, 'http://x', undefined, [
        'initialize',
        'notifications/initialized',
        'tools/list',
        'prompts/get',
        'resources/read',
      ]),
    ).not.toThrow();
    // Deny by default: a method the read list does not name needs mcp:tools too.
    expect(() => configured.requireScope(reader, 'http://x', undefined, ['tasks/cancel'])).toThrow(AppException);
    let refused: unknown;
    try {
      configured.requireScope(reader, 'http://x', 'ctx_1', ['tools/list', 'tools/call']);
    } catch (error) {
      refused = error;
    }
    expect((refused as AppException).getStatus()).toBe(403);
    expect((refused as AppException).headers['WWW-Authenticate']).toBe(
      'Bearer error="insufficient_scope", scope="mcp:tools", resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/api/v1/contexts/ctx_1/mcp"',
    );
    expect(() => configured.requireScope(principal('oauth', ['mcp:tools']), 'http://x', undefined, ['tools/call'])).not.toThrow();
    expect(() => configured.requireScope(principal('jwt'), 'http://x', undefined, ['tools/call'])).not.toThrow();
  });
});
