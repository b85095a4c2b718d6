import * as speakeasy from 'speakeasy';
import { createHash, randomBytes } from 'node:crypto';
import { get as httpGet, IncomingHttpHeaders } from 'node:http';
import { DataSource } from 'typeorm';
import { createContext, upgradeStatus } from './mcp-test-kit';
import { eventually } from '../support/polling';
import { DATABASE_KINDS, http, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, login, PASSWORD, signUp, toolsEnv } from '../tools/tools-test-kit';

/**
 * The gateway as the OAuth 2.1 authorization server of its MCP endpoints, driven over plain HTTP
 * (the SDK client and Chromium flows live in test/oauth): discovery and protected-resource
 * metadata, a pre-registered public client through the sign-in and consent pages with PKCE, a
 * token accepted on the endpoint it names and refused on another context's and on REST, refresh
 * rotation with reuse detection ending the grant's session, and revocation by the user.
 */

const REDIRECT = 'http://127.0.0.1:9/callback';

/** Cookies of one browser, per name (paths are not needed for these requests). */
class CookieJar {
  private readonly cookies = new Map<string, string>();

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const index = pair.indexOf('=');
      const name = pair.slice(0, index).trim();
      const value = pair.slice(index + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

interface Browser {
  jar: CookieJar;
  get(url: string): Promise<Response>;
  post(url: string, form: Record<string, string>): Promise<Response>;
}

function browser(baseUrl: string): Browser {
  const jar = new CookieJar();
  const absolute = (url: string) => (url.startsWith('http') ? url : `${baseUrl}${url}`);
  return {
    jar,
    async get(url) {
      const response = await fetch(absolute(url), { redirect: 'manual', headers: { cookie: jar.header() } });
      jar.store(response);
      return response;
    },
    async post(url, form) {
      const response = await fetch(absolute(url), {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      });
      jar.store(response);
      return response;
    },
  };
}

function field(html: string, name: string): string {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!match) throw new Error(`no ${name} in page: ${html}`);
  return match[1];
}

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function mcpInitialize(url: string, token: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'oauth-e2e', version: '1' } },
    }),
  }).then(async (response) => {
    await response.body?.cancel();
    return response;
  });
}

describe.each(DATABASE_KINDS)('OAuth authorization server (%s)', (kind) => {
  let t: TestApp;
  let user: Caller;
  let admin: Caller;
  let clientId: string;
  let contextId: string;
  let otherContextId: string;

  beforeAll(async () => {
    t = await startTestApp(kind, { env: toolsEnv() });
    user = await signUp(t, `oauth.${kind}@example.com`);
    admin = await login(t, ADMIN_EMAIL);
    const registered = await http(t.baseUrl, 'POST', '/api/v1/admin/oauth/clients', {
      token: admin.token,
      body: { clientName: 'Test Host', redirectUris: [REDIRECT] },
    });
    if (registered.status !== 201) throw new Error(`client: ${registered.status} ${registered.text}`);
    clientId = registered.body.clientId;
    contextId = await createContext(t, user, `oauth-a-${kind}`, ['tool_echo']);
    otherContextId = await createContext(t, user, `oauth-b-${kind}`, ['tool_echo']);
  });

  afterAll(async () => {
    await t?.close();
  });

  /** The consent page: shows the client, the endpoint and the scope; Allow leads back to the client. */
  async function consent(b: Browser, location: string, resource: string, client: string): Promise<Response> {
    const page = await b.get(location);
    expect(page.status).toBe(200);
    const consentHtml = await page.text();
    expect(consentHtml).toContain(client === clientId ? 'Test Host' : 'Web Host');
    expect(consentHtml).toContain(client);
    expect(consentHtml).toContain(resource);
    expect(consentHtml).toContain('<code>mcp:tools</code>');
    let response = await b.post(`${location}/consent`, { csrf: field(consentHtml, 'csrf'), decision: 'allow' });
    expect(response.status).toBe(303);
    response = await b.get(response.headers.get('location')!);
    expect(response.status).toBe(303);
    return response;
  }

  /** Signs `email` in through the pages and consents (unless remembered); answers the tokens for `resource`. */
  async function authorize(
    resource: string,
    email: string,
    scope: string | null = 'mcp:tools offline_access',
    { consents = true, client = clientId, redirect = REDIRECT } = {},
  ) {
    const b = browser(t.baseUrl);
    const { verifier, challenge } = pkce();
    const state = randomBytes(8).toString('hex');
    const query = new URLSearchParams({
      response_type: 'code',
      client_id: client,
      redirect_uri: redirect,
      resource,
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    if (scope !== null) query.set('scope', scope);
    let response = await b.get(`/oauth/authorize?${query}`);
    expect(response.status).toBe(303);
    let location = response.headers.get('location')!;
    expect(location).toMatch(/^\/oauth\/interaction\/[\w-]+$/);

    const signIn = await b.get(location);
    expect(signIn.status).toBe(200);
    expect(signIn.headers.get('content-security-policy')).toContain("default-src 'none'");
    const signInHtml = await signIn.text();
    expect(signInHtml).toContain('<html lang="en">');
    expect(signInHtml).toContain('<label for="password">');
    expect(signInHtml).not.toMatch(/<script|<style| style=/i);

    // A forged form (wrong anti-forgery value) is refused.
    expect((await b.post(`${location}/login`, { csrf: 'forged', email, password: PASSWORD })).status).toBe(403);
    const csrf = field(signInHtml, 'csrf');
    response = await b.post(`${location}/login`, { csrf, email, password: PASSWORD });
    expect(response.status).toBe(303);
    response = await b.get(response.headers.get('location')!);
    expect(response.status).toBe(303);
    location = response.headers.get('location')!;

    if (consents) response = await consent(b, location, resource, client);
    const callback = new URL(response.headers.get('location')!);
    expect(`${callback.origin}${callback.pathname}`).toBe(redirect);
    expect(callback.searchParams.get('state')).toBe(state);
    expect(callback.searchParams.get('iss')).toBe(t.baseUrl);
    const code = callback.searchParams.get('code')!;

    const token = await fetch(`${t.baseUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: redirect,
        client_id: client,
        code_verifier: verifier,
        resource,
      }),
    });
    const body = (await token.json()) as Record<string, string>;
    expect({ status: token.status, type: body.token_type }).toEqual({ status: 200, type: 'Bearer' });
    return { accessToken: body.access_token as string, refreshToken: body.refresh_token as string, code, verifier };
  }

  it('publishes RFC 8414 metadata and names itself in every endpoint’s RFC 9728 document', async () => {
    const metadata = await http(t.baseUrl, 'GET', '/.well-known/oauth-authorization-server');
    expect(metadata.status).toBe(200);
    expect(metadata.body.issuer).toBe(t.baseUrl);
    expect(metadata.body.authorization_endpoint).toBe(`${t.baseUrl}/oauth/authorize`);
    expect(metadata.body.token_endpoint).toBe(`${t.baseUrl}/oauth/token`);
    expect(metadata.body.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.body.response_types_supported).toEqual(['code']);
    expect(metadata.body.scopes_supported).toEqual(expect.arrayContaining(['mcp:tools', 'offline_access']));
    expect(metadata.body.authorization_response_iss_parameter_supported).toBe(true);
    expect(metadata.body.client_id_metadata_document_supported).toBe(true);
    expect(metadata.body.registration_endpoint).toBeUndefined();
    const jwks = await http(t.baseUrl, 'GET', '/oauth/jwks');
    expect(jwks.body.keys).toHaveLength(1);
    expect(jwks.body.keys[0].d).toBeUndefined();

    const root = await http(t.baseUrl, 'GET', '/.well-known/oauth-protected-resource/api/v1/mcp');
    expect(root.body.resource).toBe(`${t.baseUrl}/api/v1/mcp`);
    expect(root.body.authorization_servers).toEqual([t.baseUrl]);
    const context = await http(t.baseUrl, 'GET', `/.well-known/oauth-protected-resource/api/v1/contexts/${contextId}/mcp`);
    expect(context.body.resource).toBe(`${t.baseUrl}/api/v1/contexts/${contextId}/mcp`);
    expect(context.body.authorization_servers).toEqual([t.baseUrl]);

    const refused = await mcpInitialize(`${t.baseUrl}/api/v1/contexts/${contextId}/mcp`, 'not-a-token');
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe(
      `Bearer resource_metadata="${t.baseUrl}/.well-known/oauth-protected-resource/api/v1/contexts/${contextId}/mcp", scope="mcp:tools", error="invalid_token"`,
    );
  });

  it('keeps a confidential client’s secret sealed in oauth_store, and still authenticates the client with it', async () => {
    const registered = await http(t.baseUrl, 'POST', '/api/v1/admin/oauth/clients', {
      token: admin.token,
      body: { clientName: 'Confidential Host', redirectUris: ['https://host.example/callback'], confidential: true },
    });
    expect(registered.status).toBe(201);
    const secret = registered.body.clientSecret as string;
    expect(secret).toEqual(expect.any(String));
    const [row] = await t.app
      .get(DataSource)
      .query(`SELECT payload::text AS text, payload FROM oauth_store WHERE model = 'Client' AND id = $1`, [registered.body.clientId]);
    expect(row.text.includes(secret)).toBe(false);
    expect(row.payload.client_secret).toBeUndefined();
    expect(row.payload.client_secret_sealed).toEqual(expect.stringMatching(/^v1\./));
    // The token endpoint opens it: the right secret passes client authentication (the bogus code is what fails), a wrong one does not.
    const tokenWith = (password: string) =>
      fetch(`${t.baseUrl}/oauth/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${registered.body.clientId}:${password}`).toString('base64')}`,
        },
        body: new URLSearchParams({
          grant_type: 'authorization_code',
          code: 'bogus',
          redirect_uri: 'https://host.example/callback',
          code_verifier: 'v'.repeat(43),
        }).toString(),
      }).then(async (res) => ({ status: res.status, error: ((await res.json()) as { error: string }).error }));
    expect(await tokenWith(secret)).toEqual({ status: 400, error: 'invalid_grant' });
    expect(await tokenWith(`${secret}x`)).toEqual({ status: 401, error: 'invalid_client' });
  });

  it('keeps its metadata on the issuer whatever Host or forwarded headers a request forges', async () => {
    const forged = {
      host: 'evil.example:8443',
      'x-forwarded-host': 'evil.example',
      'x-forwarded-proto': 'https',
      forwarded: 'host=evil.example',
    };
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const metadata = await rawGet(`${t.baseUrl}${path}`, forged);
      expect(metadata.status).toBe(200);
      const document = JSON.parse(metadata.body) as Record<string, unknown>;
      expect(document.issuer).toBe(t.baseUrl);
      const endpoints = Object.entries(document).filter(([name]) => name.endsWith('_endpoint') || name === 'jwks_uri');
      expect(endpoints.length).toBeGreaterThanOrEqual(4);
      for (const [name, url] of endpoints) expect({ name, origin: new URL(url as string).origin }).toEqual({ name, origin: t.baseUrl });
    }
    // The authorization endpoint's redirect to the sign-in page stays on the issuer too.
    const authorize = await rawGet(
      `${t.baseUrl}/oauth/authorize?${new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', scope: 'mcp:tools', resource: `${t.baseUrl}/api/v1/mcp` })}`,
      forged,
    );
    expect(authorize.status).toBe(303);
    expect(new URL(authorize.headers.location!, t.baseUrl).origin).toBe(t.baseUrl);
    // The protected-resource documents answer only for the hosts the MCP endpoints answer for.
    const resource = await rawGet(`${t.baseUrl}/.well-known/oauth-protected-resource/api/v1/mcp`, { host: 'evil.example' });
    expect(resource.status).toBe(403);
  });

  it('issues a token that works on its endpoint only; refresh rotates, reuse revokes the grant and its session', async () => {
    const resource = `${t.baseUrl}/api/v1/contexts/${contextId}/mcp`;
    const tokens = await authorize(resource, `oauth.${kind}@example.com`);
    expect((await mcpInitialize(resource, tokens.accessToken)).status).toBe(200);
    expect((await mcpInitialize(`${t.baseUrl}/api/v1/contexts/${otherContextId}/mcp`, tokens.accessToken)).status).toBe(401);
    expect((await mcpInitialize(`${t.baseUrl}/api/v1/mcp`, tokens.accessToken)).status).toBe(401);
    expect((await http(t.baseUrl, 'GET', '/api/v1/tools', { token: tokens.accessToken })).status).toBe(401);
    // The WebSocket transport of the same endpoint is the same resource; another endpoint's is not.
    const ws = (path: string) =>
      upgradeStatus(`${t.baseUrl.replace('http', 'ws')}${path}`, { authorization: `Bearer ${tokens.accessToken}` });
    expect(await ws(`/api/v1/contexts/${contextId}/mcp/ws`)).toBe(101);
    expect(await ws(`/api/v1/contexts/${otherContextId}/mcp/ws`)).toBe(401);
    expect(await ws('/api/v1/mcp/ws')).toBe(401);

    // The grant is listed, with its session, which GET /sessions shows.
    const grants = await http(t.baseUrl, 'GET', '/api/v1/auth/oauth/grants', { token: user.token });
    const grant = grants.body.grants.find((g: { clientId: string; status: string }) => g.clientId === clientId && g.status === 'active');
    expect(grant).toMatchObject({ clientName: 'Test Host', resources: [resource], status: 'active' });
    const sessions = await http(t.baseUrl, 'GET', '/api/v1/sessions?limit=100', { token: user.token });
    expect(sessions.body.sessions.map((s: { id: string }) => s.id)).toContain(grant.sessionId);

    const refresh = (refreshToken: string) =>
      fetch(`${t.baseUrl}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId, resource }),
      });
    const rotated = await refresh(tokens.refreshToken);
    const rotatedBody = (await rotated.json()) as Record<string, string>;
    expect({ status: rotated.status, error: rotatedBody.error }).toEqual({ status: 200, error: undefined });
    expect(rotatedBody.refresh_token).not.toBe(tokens.refreshToken);
    expect((await mcpInitialize(resource, rotatedBody.access_token)).status).toBe(200);

    const reused = await refresh(tokens.refreshToken);
    expect(reused.status).toBe(400);
    expect((await mcpInitialize(resource, rotatedBody.access_token)).status).toBe(401);
    expect((await refresh(rotatedBody.refresh_token)).status).toBe(400);
    const after = await http(t.baseUrl, 'GET', '/api/v1/auth/oauth/grants', { token: user.token });
    expect(after.body.grants.find((g: { id: string }) => g.id === grant.id).status).toBe('revoked');

    // Each step is in the audit log, about this user and this grant.
    const actions = await eventually(
      async () => {
        const logs = await http(t.baseUrl, 'GET', `/api/v1/admin/audit-logs?userId=${user.userId}&limit=100`, { token: admin.token });
        return (logs.body.logs as Array<{ action: string; resource: string | null }>)
          .filter((entry) => entry.resource === `oauth_grant:${grant.id}`)
          .map((entry) => entry.action);
      },
      (found) =>
        ['oauth.grant', 'oauth.token_issued', 'oauth.refresh', 'oauth.refresh_reuse', 'oauth.grant_revoked'].every((a) =>
          found.includes(a),
        ),
    );
    expect(new Set(actions)).toEqual(
      new Set(['oauth.grant', 'oauth.token_issued', 'oauth.refresh', 'oauth.refresh_reuse', 'oauth.grant_revoked']),
    );
  });

  it('remembers a consent per user and web client: a second sign-in goes straight back to the client, on the same session', async () => {
    const resource = `${t.baseUrl}/api/v1/contexts/${contextId}/mcp`;
    // A web client (https redirect URI): a native (loopback) client is asked every time (RFC 8252).
    const redirect = 'https://host.example.test/callback';
    const registered = await http(t.baseUrl, 'POST', '/api/v1/admin/oauth/clients', {
      token: admin.token,
      body: { clientName: 'Web Host', redirectUris: [redirect] },
    });
    expect(registered.status).toBe(201);
    const web = { client: registered.body.clientId as string, redirect };
    const first = await authorize(resource, `oauth.${kind}@example.com`, 'mcp:tools offline_access', web);
    const second = await authorize(resource, `oauth.${kind}@example.com`, 'mcp:tools offline_access', { ...web, consents: false });
    expect((await mcpInitialize(resource, second.accessToken)).status).toBe(200);
    const sid = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')).sid;
    expect(sid(second.accessToken)).toBe(sid(first.accessToken));
  });

  it('a replayed authorization code is refused and revokes what it issued', async () => {
    const resource = `${t.baseUrl}/api/v1/contexts/${otherContextId}/mcp`;
    const tokens = await authorize(resource, `oauth.${kind}@example.com`);
    expect((await mcpInitialize(resource, tokens.accessToken)).status).toBe(200);
    const replay = await fetch(`${t.baseUrl}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: tokens.code,
        redirect_uri: REDIRECT,
        client_id: clientId,
        code_verifier: tokens.verifier,
      }),
    });
    expect(replay.status).toBe(400);
    expect(((await replay.json()) as Record<string, string>).error).toBe('invalid_grant');
    expect((await mcpInitialize(resource, tokens.accessToken)).status).toBe(401);
  });

  it('the user revokes a grant: its tokens are refused at once (a request without scope gets mcp:tools)', async () => {
    const resource = `${t.baseUrl}/api/v1/mcp`;
    const tokens = await authorize(resource, `oauth.${kind}@example.com`, null);
    expect((await mcpInitialize(resource, tokens.accessToken)).status).toBe(200);
    const grants = await http(t.baseUrl, 'GET', '/api/v1/auth/oauth/grants', { token: user.token });
    const grant = grants.body.grants.find(
      (g: { resources: string[]; status: string }) => g.status === 'active' && g.resources.includes(resource),
    );
    expect((await http(t.baseUrl, 'DELETE', `/api/v1/auth/oauth/grants/${grant.id}`, { token: user.token })).status).toBe(204);
    expect((await mcpInitialize(resource, tokens.accessToken)).status).toBe(401);

    // An administrator revokes another grant of the user's; the user may not revoke someone else's.
    const again = await authorize(resource, `oauth.${kind}@example.com`);
    const listed = await http(t.baseUrl, 'GET', '/api/v1/auth/oauth/grants', { token: user.token });
    const active = listed.body.grants.find((g: { status: string }) => g.status === 'active');
    const stranger = await signUp(t, `oauth.stranger.${kind}@example.com`);
    expect((await http(t.baseUrl, 'DELETE', `/api/v1/auth/oauth/grants/${active.id}`, { token: stranger.token })).status).toBe(404);
    expect((await mcpInitialize(resource, again.accessToken)).status).toBe(200);
    expect((await http(t.baseUrl, 'DELETE', `/api/v1/admin/oauth/grants/${active.id}`, { token: admin.token })).status).toBe(204);
    expect((await mcpInitialize(resource, again.accessToken)).status).toBe(401);
  });
});

describe('OAuth dynamic client registration (RFC 7591)', () => {
  const metadata = {
    client_name: 'Dynamic Host',
    redirect_uris: [REDIRECT],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    scope: 'mcp:tools offline_access',
  };
  const register = (t: TestApp) =>
    fetch(`${t.baseUrl}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(metadata),
    });

  it('is off by default: no endpoint in the metadata, registration refused', async () => {
    const t = await startTestApp('postgres', { env: toolsEnv() });
    try {
      expect((await http(t.baseUrl, 'GET', '/.well-known/oauth-authorization-server')).body.registration_endpoint).toBeUndefined();
      expect((await register(t)).status).toBeGreaterThanOrEqual(400);
    } finally {
      await t.close();
    }
  });

  it('when enabled, registers a public client and audits it', async () => {
    const t = await startTestApp('postgres', { env: toolsEnv({ OAUTH_DYNAMIC_REGISTRATION: 'true' }) });
    try {
      expect((await http(t.baseUrl, 'GET', '/.well-known/oauth-authorization-server')).body.registration_endpoint).toBe(
        `${t.baseUrl}/oauth/register`,
      );
      const response = await register(t);
      const client = (await response.json()) as Record<string, unknown>;
      expect({ status: response.status, auth: client.token_endpoint_auth_method, secret: client.client_secret }).toEqual({
        status: 201,
        auth: 'none',
        secret: undefined,
      });
      const admin = await login(t, ADMIN_EMAIL);
      await eventually(
        () => http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs?action=oauth.client.created', { token: admin.token }),
        (logs) =>
          (logs.body.logs as Array<{ resource: string }>).some((entry) => entry.resource === `oauth_client:${String(client.client_id)}`),
      );
    } finally {
      await t.close();
    }
  });
});

describe('OAuth endpoints under the auth routes’ rate limit', () => {
  it('refuses the token endpoint with 429 and Retry-After once an address spent its budget', async () => {
    const t = await startTestApp('postgres', { env: toolsEnv({ AUTH_RATE_LIMIT: '3', AUTH_RATE_WINDOW: '600' }) });
    try {
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 4; i++) {
        last = await fetch(`${t.baseUrl}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: 'grant_type=authorization_code&code=x&client_id=y',
        });
        statuses.push(last.status);
      }
      expect(statuses.slice(3)).toEqual([429]);
      expect(statuses.slice(0, 3).every((status) => status >= 400 && status < 429)).toBe(true);
      expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await last!.json()) as Record<string, string>).error).toBe('slow_down');
    } finally {
      await t.close();
    }
  });
});

describe('the sign-in page counts failures like POST /auth/login', () => {
  it('wrong passwords on the page lock the account for REST logins too, and the page keeps refusing', async () => {
    const t = await startTestApp('postgres', { env: toolsEnv({ LOCKOUT_THRESHOLD: '3' }) });
    try {
      const email = 'oauth.lockout@example.com';
      await signUp(t, email);
      const admin = await login(t, ADMIN_EMAIL);
      const registered = await http(t.baseUrl, 'POST', '/api/v1/admin/oauth/clients', {
        token: admin.token,
        body: { clientName: 'Lockout Host', redirectUris: [REDIRECT] },
      });
      const b = browser(t.baseUrl);
      const query = new URLSearchParams({
        response_type: 'code',
        client_id: registered.body.clientId,
        redirect_uri: REDIRECT,
        resource: `${t.baseUrl}/api/v1/mcp`,
        scope: 'mcp:tools',
        code_challenge: pkce().challenge,
        code_challenge_method: 'S256',
      });
      const location = (await b.get(`/oauth/authorize?${query}`)).headers.get('location')!;
      const csrf = field(await (await b.get(location)).text(), 'csrf');
      for (let i = 0; i < 3; i++) {
        const refused = await b.post(`${location}/login`, { csrf, email, password: 'Wrong-password-1' });
        expect(refused.status).toBe(401);
        expect(await refused.text()).toContain('Invalid email or password');
      }
      expect((await http(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { email, password: PASSWORD } })).status).toBe(401);
      expect((await b.post(`${location}/login`, { csrf, email, password: PASSWORD })).status).toBe(401);
    } finally {
      await t.close();
    }
  });
});

describe('the sign-in page asks for the second factor like POST /auth/login', () => {
  it('a TOTP user gives a code (a wrong one is refused), a backup code works too', async () => {
    const t = await startTestApp('embedded', { env: toolsEnv() });
    try {
      const email = 'oauth.totp@example.com';
      const user = await signUp(t, email);
      const enabled = await http(t.baseUrl, 'POST', '/api/v1/auth/mfa/enable', { token: user.token, body: { type: 'totp' } });
      const secret: string = enabled.body.secret;
      const backupCodes: string[] = enabled.body.backupCodes;
      const now = Math.floor(Date.now() / 1000);
      const verified = await http(t.baseUrl, 'POST', '/api/v1/auth/mfa/verify', {
        token: user.token,
        body: { type: 'totp', code: speakeasy.totp({ secret, encoding: 'base32', time: now }) },
      });
      expect(verified.status).toBe(200);
      const admin = await login(t, ADMIN_EMAIL);
      const registered = await http(t.baseUrl, 'POST', '/api/v1/admin/oauth/clients', {
        token: admin.token,
        body: { clientName: 'MFA Host', redirectUris: [REDIRECT] },
      });

      /** Password, then the code: answers where the page sends the browser. */
      const signIn = async (code: string): Promise<Response> => {
        const b = browser(t.baseUrl);
        const query = new URLSearchParams({
          response_type: 'code',
          client_id: registered.body.clientId,
          redirect_uri: REDIRECT,
          resource: `${t.baseUrl}/api/v1/mcp`,
          scope: 'mcp:tools',
          code_challenge: pkce().challenge,
          code_challenge_method: 'S256',
        });
        const location = (await b.get(`/oauth/authorize?${query}`)).headers.get('location')!;
        const csrf = field(await (await b.get(location)).text(), 'csrf');
        const step = await b.post(`${location}/login`, { csrf, email, password: PASSWORD });
        expect(step.status).toBe(200);
        const stepHtml = await step.text();
        expect(stepHtml).toContain('<label for="code">');
        const wrong = await b.post(`${location}/login`, { csrf, ticket: field(stepHtml, 'ticket'), code: '000000' });
        expect(wrong.status).toBe(401);
        return b.post(`${location}/login`, { csrf, ticket: field(stepHtml, 'ticket'), code });
      };

      const withTotp = await signIn(speakeasy.totp({ secret, encoding: 'base32', time: now + 30 }));
      expect(withTotp.status).toBe(303);
      expect(withTotp.headers.get('location')).toContain('/oauth/authorize/');
      const withBackup = await signIn(backupCodes[0]);
      expect(withBackup.status).toBe(303);
      // A backup code works once.
      expect((await signIn(backupCodes[0])).status).toBe(401);
    } finally {
      await t.close();
    }
  });
});

/** A GET with headers fetch would not send (Host), through node:http; status, headers and body text. */
function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpGet(url, { headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}
