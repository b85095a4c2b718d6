import { loadConfig } from '@app/core';
import { hostnameOf, OriginPolicy } from './origin-policy';

describe('OriginPolicy', () => {
  const policy = (env: Record<string, string> = {}) => new OriginPolicy(loadConfig({ HOST: '127.0.0.1', ...env }));

  it('allows the localhost forms by default, on any port, and no Origin at all', () => {
    const p = policy();
    for (const host of ['localhost:3000', '127.0.0.1', '[::1]:8080']) expect(p.check(host, undefined)).toBeNull();
  });

  it("allows by default only the endpoint's own origin: scheme, host and port, not the hostname alone", () => {
    const p = policy();
    expect(p.check('localhost:3000', 'http://localhost:3000')).toBeNull();
    expect(p.check('[::1]:8080', 'http://[::1]:8080')).toBeNull();
    expect(p.check('127.0.0.1', 'http://127.0.0.1')).toBeNull();
    expect(p.check('localhost', 'https://localhost')).toBeNull();
    for (const origin of [
      'http://localhost:1',
      'http://localhost:5173',
      'http://localhost',
      'http://127.0.0.1:3000',
      'ws://localhost:3000',
    ]) {
      expect(p.check('localhost:3000', origin)?.status).toBe(403);
    }
    expect(p.check('localhost:80', 'https://localhost')?.status).toBe(403);
    // Only the serialised form is an origin: a trailing path or credentials are refused.
    expect(p.check('localhost:3000', 'http://localhost:3000/')?.status).toBe(403);
    expect(p.check('localhost:3000', 'http://user@localhost:3000')?.status).toBe(403);
  });

  it('refuses a foreign Host, a foreign or opaque Origin (DNS rebinding, cross-site)', () => {
    const p = policy();
    expect(p.check('evil.example', undefined)?.status).toBe(403);
    expect(p.check(undefined, undefined)?.status).toBe(403);
    expect(p.check('localhost', 'https://evil.example')?.status).toBe(403);
    expect(p.check('localhost', 'null')?.status).toBe(403);
    expect(p.check('localhost', 'not a url')?.status).toBe(403);
  });

  it('uses the configured lists: hosts match any port, origins match scheme, host and port', () => {
    const p = policy({
      MCP_ALLOWED_HOSTS: 'mcp.example.com',
      MCP_ALLOWED_ORIGINS: 'https://app.example.com, tools.example.org, http://localhost:5173',
    });
    expect(p.check('mcp.example.com:443', 'https://app.example.com')).toBeNull();
    expect(p.check('mcp.example.com', 'https://app.example.com:443')?.status).toBe(403);
    expect(p.check('mcp.example.com', 'http://app.example.com')?.status).toBe(403);
    expect(p.check('mcp.example.com', 'https://app.example.com:8443')?.status).toBe(403);
    expect(p.check('mcp.example.com', 'http://localhost:5173')).toBeNull();
    expect(p.check('mcp.example.com', 'http://localhost:5174')?.status).toBe(403);
    // A bare hostname stands for its http and https origins on the default ports only.
    expect(p.check('mcp.example.com', 'http://tools.example.org')).toBeNull();
    expect(p.check('mcp.example.com', 'https://tools.example.org')).toBeNull();
    expect(p.check('mcp.example.com', 'http://tools.example.org:8080')?.status).toBe(403);
    expect(p.check('localhost', undefined)?.status).toBe(403);
  });

  it('adds a specific listen host to the defaults, and validates the variables', () => {
    expect(loadConfig({ HOST: '10.1.2.3' }).mcp.allowedHosts).toEqual(['localhost', '127.0.0.1', '[::1]', '10.1.2.3']);
    expect(loadConfig({ HOST: '0.0.0.0' }).mcp.allowedHosts).toEqual(['localhost', '127.0.0.1', '[::1]']);
    expect(() => loadConfig({ MCP_ALLOWED_HOSTS: 'http://x.example' })).toThrow(/MCP_ALLOWED_HOSTS/);
    expect(() => loadConfig({ MCP_ALLOWED_ORIGINS: 'ftp://x.example/path' })).toThrow(/MCP_ALLOWED_ORIGINS/);
    expect(() => loadConfig({ MCP_ALLOWED_ORIGINS: 'https://x.example/path' })).toThrow(/MCP_ALLOWED_ORIGINS/);
    expect(loadConfig({}).mcp.allowedOrigins).toEqual([]);
    expect(loadConfig({ MCP_ALLOWED_ORIGINS: 'HTTPS://App.Example.com:443,a.example' }).mcp.allowedOrigins).toEqual([
      'https://app.example.com',
      'http://a.example',
      'https://a.example',
    ]);
  });

  it('reads hostnames out of Host headers', () => {
    expect(hostnameOf('Example.COM:80')).toBe('example.com');
    expect(hostnameOf('[::1]:3000')).toBe('[::1]');
    expect(hostnameOf('user@host')).toBeUndefined();
    expect(hostnameOf('host/path')).toBeUndefined();
  });
});

describe('hostnameOf, asked again (cached)', () => {
  it('answers a Host header it has seen as it did the first time, also past the cache bound', () => {
    const hosts = Array.from({ length: 600 }, (_, i) => (i % 3 === 0 ? `user@h${i}` : `H${i}.example:${i}`));
    const first = hosts.map(hostnameOf);
    expect(hosts.map(hostnameOf)).toEqual(first);
    expect(first[1]).toBe('h1.example');
    expect(first[0]).toBeUndefined();
  });
});
