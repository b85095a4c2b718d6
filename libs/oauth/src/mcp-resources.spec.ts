import { isMcpResource, mcpResourceUrl } from './mcp-resources';

describe('MCP endpoints as OAuth resources', () => {
  const hosts = ['gw.example.com', 'localhost'];

  it('names the gateway endpoint and each context endpoint by its canonical URL', () => {
    expect(mcpResourceUrl('https://gw.example.com')).toBe('https://gw.example.com/api/v1/mcp');
    expect(mcpResourceUrl('https://gw.example.com', 'ctx_1')).toBe('https://gw.example.com/api/v1/contexts/ctx_1/mcp');
  });

  it('accepts exactly our endpoints on our hosts', () => {
    expect(isMcpResource('https://gw.example.com/api/v1/mcp', hosts)).toBe(true);
    expect(isMcpResource('http://localhost:3000/api/v1/contexts/ctx_1/mcp', hosts)).toBe(true);
  });

  it.each([
    'https://evil.example.com/api/v1/mcp',
    'https://gw.example.com/api/v1/mcp/',
    'https://gw.example.com/api/v1/mcp?x=1',
    'https://gw.example.com/api/v1/mcp#f',
    'https://user@gw.example.com/api/v1/mcp',
    'https://gw.example.com/api/v1/tools',
    'https://gw.example.com/api/v1/contexts/../mcp',
    'https://gw.example.com/api/v1/contexts/a/b/mcp',
    'HTTPS://GW.EXAMPLE.COM/api/v1/mcp',
    'ftp://gw.example.com/api/v1/mcp',
    'not a url',
  ])('refuses %s', (indicator) => {
    expect(isMcpResource(indicator, hosts)).toBe(false);
  });
});
