import { UriTemplate } from '@modelcontextprotocol/client';
import { federatedPromptName, federatedUri, isFederatedUri, parseFederatedUri } from './federated-names';

describe('federated names and URIs', () => {
  it("names a prompt like a tool: the upstream's prefix + its name", () => {
    expect(federatedPromptName('everything.', 'simple-prompt')).toBe('everything.simple-prompt');
    expect(federatedPromptName('', 'simple-prompt')).toBe('simple-prompt');
  });

  it('passes the URIs of an empty-prefix upstream through unchanged', () => {
    expect(federatedUri('conf', '', 'test://static-text')).toBe('test://static-text');
    expect(parseFederatedUri('test://static-text')).toBeNull();
  });

  it.each([
    'demo://resource/static/document/architecture.md',
    'file:///home/user/a%20b.txt',
    'https://example.com/x?y=1&z=%2F#frag',
    'urn:isbn:0451450523',
    'mcp-upstream://other/nested://x',
  ])('rewrites %s reversibly for a prefixed upstream', (uri) => {
    const agent = federatedUri('everything', 'everything.', uri);
    expect(agent).toBe(`mcp-upstream://everything/${uri}`);
    expect(isFederatedUri(agent)).toBe(true);
    expect(parseFederatedUri(agent)).toEqual({ upstream: 'everything', uri });
  });

  it("keeps two upstreams' identical URIs apart", () => {
    const a = federatedUri('a', 'a.', 'demo://1');
    const b = federatedUri('b', 'b.', 'demo://1');
    expect(a).not.toBe(b);
    expect(parseFederatedUri(a)!.upstream).toBe('a');
    expect(parseFederatedUri(b)!.upstream).toBe('b');
  });

  it('maps a template so that its expansions are rewritten URIs of the same upstream', () => {
    const template = new UriTemplate(federatedUri('everything', 'everything.', 'demo://resource/dynamic/text/{resourceId}'));
    const expanded = template.expand({ resourceId: '3' });
    expect(parseFederatedUri(expanded)).toEqual({ upstream: 'everything', uri: 'demo://resource/dynamic/text/3' });
    expect(template.match(federatedUri('everything', 'everything.', 'demo://resource/dynamic/text/9'))).toEqual({ resourceId: '9' });
  });

  it('refuses URIs in the scheme that name no upstream or no original', () => {
    expect(parseFederatedUri('mcp-upstream://')).toBeNull();
    expect(parseFederatedUri('mcp-upstream:///demo://x')).toBeNull();
    expect(parseFederatedUri('mcp-upstream://everything')).toBeNull();
    expect(parseFederatedUri('mcp-upstream://everything/')).toBeNull();
    expect(parseFederatedUri('MCP-UPSTREAM://everything/demo://x')).toEqual({ upstream: 'everything', uri: 'demo://x' });
  });
});
