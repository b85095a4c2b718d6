import { resolve } from 'node:path';
import { ConfigValidationError, loadConfig } from '@app/core';
import { loadUpstreamsFile, parseUpstreams, UPSTREAM_DEFAULTS } from './upstream-config';

const options = { baseDir: '/etc/gateway', secrets: { UPSTREAM_REMOTE_TOKEN: 's3cret-token', UPSTREAM_GH: 'gh-token' } };
const parse = (upstreams: unknown[]) => parseUpstreams(JSON.stringify({ upstreams }), options);

function problemsOf(upstreams: unknown[]): string[] {
  try {
    parse(upstreams);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigValidationError);
    return (error as ConfigValidationError).problems;
  }
  throw new Error('expected the configuration to be refused');
}

const stdio = {
  name: 'local',
  transport: 'stdio',
  command: '/usr/bin/node',
  args: ['server.js'],
  category: 'system',
  permissions: ['tools:execute'],
};
const remote = {
  name: 'remote',
  transport: 'http',
  url: 'https://mcp.example.com/mcp',
  headers: { Authorization: { fromEnv: 'UPSTREAM_REMOTE_TOKEN', prefix: 'Bearer ' }, 'X-Client': 'gateway' },
  category: 'data',
  permissions: [],
};

describe('parseUpstreams', () => {
  it('reads both transports, with defaults and secrets resolved from the given variables', () => {
    const [local, http] = parse([stdio, remote]);
    expect(local).toEqual({
      name: 'local',
      providerName: 'upstream:local',
      transport: 'stdio',
      command: '/usr/bin/node',
      args: ['server.js'],
      env: {},
      cwd: undefined,
      category: 'system',
      permissions: ['tools:execute'],
      idPrefix: 'local.',
      enabled: true,
      protocol: 'legacy',
      rateLimit: UPSTREAM_DEFAULTS.rateLimit,
      timeouts: UPSTREAM_DEFAULTS.timeouts,
      reconnect: UPSTREAM_DEFAULTS.reconnect,
      healthCheckMs: UPSTREAM_DEFAULTS.healthCheckMs,
      maxConcurrentCalls: UPSTREAM_DEFAULTS.maxConcurrentCalls,
      auth: { mode: 'gateway' },
    });
    expect(http).toMatchObject({
      transport: 'http',
      url: 'https://mcp.example.com/mcp',
      headers: { Authorization: 'Bearer s3cret-token', 'X-Client': 'gateway' },
      protocol: 'auto',
      idPrefix: 'remote.',
    });
  });

  it('takes an empty prefix, explicit settings, env secrets and resolves relative paths against the file', () => {
    const [entry] = parse([
      {
        ...stdio,
        command: './bin/server',
        cwd: 'work',
        env: { PATH: '/usr/bin', GITHUB_TOKEN: { fromEnv: 'UPSTREAM_GH' } },
        idPrefix: '',
        enabled: false,
        rateLimit: { requests: 5, window: '30s' },
        timeouts: { callMs: 1000 },
        reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
        healthCheckMs: 0,
      },
    ]);
    expect(entry).toMatchObject({
      command: '/etc/gateway/bin/server',
      cwd: '/etc/gateway/work',
      env: { PATH: '/usr/bin', GITHUB_TOKEN: 'gh-token' },
      idPrefix: '',
      enabled: false,
      rateLimit: { requests: 5, window: '30s' },
      timeouts: { connectMs: 10_000, listMs: 10_000, callMs: 1000 },
      reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
      healthCheckMs: 0,
    });
  });

  it('names the entry and the field of every problem, all at once', () => {
    const problems = problemsOf([
      { ...stdio, category: 'games' },
      { ...remote, name: 'Bad Name' },
      { ...remote, name: 'remote2', url: 'ftp://x' },
    ]);
    expect(problems).toEqual([
      'upstreams[0] "local": category must be one of system, data, analytics, monitoring',
      expect.stringMatching(/^upstreams\[1\] "Bad Name": name must be/),
      'upstreams[2] "remote2": url must start with http:// or https://',
    ]);
  });

  it('refuses credentials written in the file, unknown or unset variables and non-UPSTREAM_ names', () => {
    const problems = problemsOf([
      { ...remote, headers: { Authorization: 'Bearer abc' } },
      { ...remote, name: 'b', headers: { 'X-Api-Key': { fromEnv: 'JWT_SECRET' } } },
      { ...remote, name: 'c', headers: { Authorization: { fromEnv: 'UPSTREAM_MISSING' } } },
      { ...stdio, name: 'd', env: { API_TOKEN: 'literal' } },
      { ...remote, name: 'e', url: 'https://user:pw@example.com/mcp' },
    ]);
    expect(problems).toEqual([
      expect.stringContaining('upstreams[0] "remote": headers.Authorization: looks like a credential'),
      expect.stringContaining('upstreams[1] "b": headers.X-Api-Key: fromEnv must name a variable starting with UPSTREAM_'),
      'upstreams[2] "c": headers.Authorization: environment variable UPSTREAM_MISSING is not set',
      expect.stringContaining('upstreams[3] "d": env.API_TOKEN: looks like a credential'),
      expect.stringContaining('upstreams[4] "e": url must not carry credentials'),
    ]);
    // Messages name variables, never values.
    expect(problems.join('\n')).not.toContain('s3cret');
  });

  it('refuses unknown keys (typos), bare commands without PATH, duplicates and reserved headers', () => {
    const problems = problemsOf([
      { ...stdio, idprefix: 'x.' },
      { ...stdio, name: 'npx', command: 'npx' },
      { ...stdio },
      { ...remote, headers: { 'Mcp-Session-Id': 'x' } },
      { ...stdio, name: 'slow', reconnect: { initialDelayMs: 1000, maxDelayMs: 10 } },
    ]);
    expect(problems).toEqual([
      'upstreams[0] "local": unknown key "idprefix" for transport stdio',
      expect.stringContaining('upstreams[1] "npx": command "npx" is not a path'),
      'upstreams[2] "local": name is used by an earlier entry',
      'upstreams[3] "remote": headers.Mcp-Session-Id: managed by the MCP transport, cannot be set',
      'upstreams[4] "slow": reconnect.maxDelayMs must not be below reconnect.initialDelayMs',
    ]);
  });

  it('explains a file that is not JSON or not shaped right', () => {
    expect(() => parseUpstreams('{ nope', options)).toThrow(/MCP_UPSTREAMS_FILE is not valid JSON/);
    expect(() => parseUpstreams('[]', options)).toThrow(/must be a JSON object \{ "upstreams"/);
  });
});

describe('auth: whose credential a call carries', () => {
  it('is gateway unless declared', () => {
    expect(parse([remote])[0].auth).toEqual({ mode: 'gateway' });
    expect(parse([{ ...remote, auth: 'gateway' }])[0].auth).toEqual({ mode: 'gateway' });
  });

  it('user-secret: Authorization with "Bearer " by default, other headers without a prefix', () => {
    expect(parse([{ ...remote, auth: 'user-secret' }])[0].auth).toEqual({
      mode: 'user-secret',
      header: 'Authorization',
      prefix: 'Bearer ',
      connectUrl: undefined,
      idleMs: 300_000,
      maxConnections: 256,
    });
    expect(
      parse([
        { ...remote, auth: { mode: 'user-secret', header: 'X-Api-Key', connectUrl: 'https://portal.example.com/tokens', idleMs: 5000 } },
      ])[0].auth,
    ).toEqual({
      mode: 'user-secret',
      header: 'X-Api-Key',
      prefix: '',
      connectUrl: 'https://portal.example.com/tokens',
      idleMs: 5000,
      maxConnections: 256,
    });
  });

  it('token-exchange: the IdP, the client (secret from the environment only), the audience', () => {
    const exchange = {
      mode: 'token-exchange',
      tokenEndpoint: 'https://idp.example.com/token',
      clientId: 'gateway',
      clientSecret: { fromEnv: 'UPSTREAM_GH' },
      audience: 'api://crm',
      scope: 'crm.read',
    };
    expect(parse([{ ...remote, auth: exchange }])[0].auth).toEqual({
      mode: 'token-exchange',
      header: 'Authorization',
      prefix: 'Bearer ',
      idleMs: 300_000,
      maxConnections: 256,
      tokenEndpoint: 'https://idp.example.com/token',
      clientId: 'gateway',
      clientSecret: 'gh-token',
      audience: 'api://crm',
      resource: undefined,
      scope: 'crm.read',
      subjectIssuer: 'secure-mcp-gateway',
      subjectToken: 'gateway',
    });
    expect(
      problemsOf([{ ...remote, auth: { mode: 'token-exchange', tokenEndpoint: 'idp', clientSecret: 'literal', connectUrl: 'https://x' } }]),
    ).toEqual([
      'upstreams[0] "remote": auth: unknown key "connectUrl" for mode token-exchange',
      'upstreams[0] "remote": auth.tokenEndpoint must be an http(s) URL without credentials: the IdP\'s token endpoint (RFC 8693 token exchange)',
      'upstreams[0] "remote": auth.clientId is required: a non-empty string on one line',
      'upstreams[0] "remote": auth.audience is required: a non-empty string on one line',
      'upstreams[0] "remote": auth.clientSecret must be { "fromEnv": "UPSTREAM_..." } (secrets are never written in this file)',
    ]);
  });

  it("user-oauth: the client registered at the upstream's authorization server, its secret from the environment only", () => {
    const oauth = { mode: 'user-oauth', clientId: 'gateway', clientSecret: { fromEnv: 'UPSTREAM_GH' }, scope: 'repo' };
    expect(parse([{ ...remote, auth: oauth }])[0].auth).toEqual({
      mode: 'user-oauth',
      header: 'Authorization',
      prefix: 'Bearer ',
      idleMs: 300_000,
      maxConnections: 256,
      clientId: 'gateway',
      clientSecret: 'gh-token',
      issuer: undefined,
      scope: 'repo',
      resource: undefined,
    });
    expect(
      parse([{ ...remote, auth: { mode: 'user-oauth', clientId: 'public', issuer: 'https://as.example.com' } }])[0].auth,
    ).toMatchObject({
      clientId: 'public',
      clientSecret: undefined,
      issuer: 'https://as.example.com',
    });
  });

  it('refuses what it cannot honour, each problem named', () => {
    expect(problemsOf([{ ...remote, auth: 'user-oauth' }])).toEqual([
      'upstreams[0] "remote": auth.clientId is required: a non-empty string on one line',
    ]);
    expect(
      problemsOf([{ ...remote, auth: { mode: 'user-oauth', clientId: 'gw', clientSecret: 'inline', issuer: 'x', audience: 'a' } }]),
    ).toEqual([
      'upstreams[0] "remote": auth: unknown key "audience" for mode user-oauth',
      'upstreams[0] "remote": auth.clientSecret must be { "fromEnv": "UPSTREAM_..." } (secrets are never written in this file)',
      'upstreams[0] "remote": auth.issuer must be an http(s) URL without credentials: the upstream\'s authorization server (its issuer)',
    ]);
    expect(problemsOf([{ ...remote, auth: 'everyone' }])).toEqual([
      'upstreams[0] "remote": auth.mode must be one of gateway, user-secret, user-oauth, token-exchange',
    ]);
    expect(problemsOf([{ ...stdio, auth: 'user-secret' }])).toEqual([
      'upstreams[0] "local": auth.mode user-secret needs transport "http" (a stdio upstream is one process shared by every user)',
    ]);
    expect(
      problemsOf([
        {
          ...remote,
          auth: { mode: 'user-secret', header: 'Mcp-Session-Id', prefix: 'a\nb', connectUrl: 'ftp://x', extra: 1, maxConnections: 0 },
        },
      ]),
    ).toEqual([
      'upstreams[0] "remote": auth: unknown key "extra" for mode user-secret',
      'upstreams[0] "remote": auth.header must be a header name the MCP transport does not manage itself (default "Authorization")',
      'upstreams[0] "remote": auth.prefix must be a string on one line, like "Bearer "',
      'upstreams[0] "remote": auth.maxConnections must be an integer from 1 to 100000',
      'upstreams[0] "remote": auth.connectUrl must be an http(s) URL without credentials: the page where users set their secret for this upstream',
    ]);
    expect(problemsOf([{ ...remote, auth: { mode: 'gateway', header: 'X' } }])).toEqual([
      'upstreams[0] "remote": auth: unknown key "header" for mode gateway',
    ]);
  });
});

describe('upstream settings of the config module', () => {
  it('hands over the file path and only the UPSTREAM_* variables', () => {
    const config = loadConfig({
      MCP_UPSTREAMS_FILE: 'conf/upstreams.json',
      UPSTREAM_A_TOKEN: ' tok ',
      UPSTREAM_EMPTY: ' ',
      JWT_SECRET: 'j'.repeat(40),
      HOME: '/root',
    });
    expect(config.upstreams.file).toBe(resolve('conf/upstreams.json'));
    expect(config.secrets.upstreamSecrets).toEqual({ UPSTREAM_A_TOKEN: 'tok' });
    expect(loadConfig({}).upstreams.file).toBeUndefined();
  });

  it('reads ENCRYPTION_KEY_PREVIOUS as a list of earlier keys (rotation), refusing short ones without showing them', () => {
    const older = 'o'.repeat(40);
    expect(loadConfig({ ENCRYPTION_KEY_PREVIOUS: ` ${older} , ${'p'.repeat(32)} ` }).secrets.previousEncryptionKeys).toEqual([
      older,
      'p'.repeat(32),
    ]);
    expect(loadConfig({}).secrets.previousEncryptionKeys).toEqual([]);
    expect(() => loadConfig({ ENCRYPTION_KEY_PREVIOUS: 'short-key' })).toThrow(
      /ENCRYPTION_KEY_PREVIOUS: every key must be at least 32 characters/,
    );
    expect(() => loadConfig({ ENCRYPTION_KEY_PREVIOUS: 'short-key' })).not.toThrow(/short-key/);
  });

  it('declares no upstream without a file, and names an unreadable one', () => {
    expect(loadUpstreamsFile(undefined, {})).toEqual([]);
    expect(() => loadUpstreamsFile('/nonexistent/upstreams.json', {})).toThrow(
      'MCP_UPSTREAMS_FILE /nonexistent/upstreams.json cannot be read (ENOENT)',
    );
  });
});
