import type { FastifyInstance } from 'fastify';
import { RouteRegistry } from '@app/core';
import { createApiKey, createContext, upgradeStatus } from '../mcp/mcp-test-kit';
import { http, HttpResult, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, execute, login, PASSWORD, signUp, toolsEnv, waitForExecution } from '../tools/tools-test-kit';

/**
 * Every route × every kind of caller → the status it must answer. The routes come from the
 * server's own route registry, so a route added without a row here fails this suite; a row whose
 * route no longer exists fails it too.
 *
 * Requests are chosen so that passing the access check shows as a distinct status without
 * changing anything shared: invalid bodies (400 comes after the guards), unknown ids (404), or
 * harmless reads. Scope (whose data a caller sees) is checked with real resources owned by `user`
 * and `admin`, and by the focused tests further down.
 */

const WHO = [
  'anonymous',
  'user',
  'developer',
  'admin',
  'fullKey',
  'restrictedKey',
  'boundKey',
  'adminRestrictedKey',
  'adminBoundKey',
] as const;
type Who = (typeof WHO)[number];

/** What a restricted key may do: read tools, contexts and sessions, nothing else. */
const RESTRICTED = ['tools:read', 'contexts:read', 'sessions:read'];

interface Fixture {
  user: Caller;
  developer: Caller;
  admin: Caller;
  keys: Record<'fullKey' | 'restrictedKey' | 'boundKey' | 'adminRestrictedKey' | 'adminBoundKey', string>;
  /** user's context, the one boundKey is bound to */
  userContext: string;
  /** another context of user's */
  userOtherContext: string;
  /** admin's context, the one adminBoundKey is bound to */
  adminContext: string;
  /** an execution user ran with their login */
  userExecution: string;
}

interface Probe {
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Log in afresh for user principals: the request ends the session it is sent with. */
  fresh?: boolean;
}

interface Row {
  probe(f: Fixture): Probe;
  /** Statuses in WHO order: anonymous user developer admin fullKey restrictedKey boundKey adminRestrictedKey adminBoundKey */
  expect: string;
}

const MISSING = 'nope_does_not_exist';
const ECHO = 'tool_echo';
const MCP_HEADERS = { accept: 'application/json, text/event-stream', 'content-type': 'application/json' };
const MCP_INITIALIZE = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'matrix', version: '1' } },
};
const mcpInit = (path: string): Probe => ({ path, body: MCP_INITIALIZE, headers: MCP_HEADERS });
const MCP_STREAM_HEADERS = { accept: 'text/event-stream' };

//                                                            anon user dev  adm  full rstr bnd  aRst aBnd
const MATRIX: Record<string, Row> = {
  'POST /api/v1/auth/register': {
    probe: () => ({ path: '/api/v1/auth/register', body: {} }),
    expect: '400 400 400 400 400 400 400 400 400',
  },
  'POST /api/v1/auth/login': { probe: () => ({ path: '/api/v1/auth/login', body: {} }), expect: '400 400 400 400 400 400 400 400 400' },
  // The bearer credential of refresh is a refresh token: access tokens and keys are not one.
  'POST /api/v1/auth/refresh': { probe: () => ({ path: '/api/v1/auth/refresh' }), expect: '401 401 401 401 401 401 401 401 401' },
  'POST /api/v1/auth/logout': {
    probe: () => ({ path: '/api/v1/auth/logout', fresh: true }),
    expect: '401 200 200 200 403 403 403 403 403',
  },
  'GET /api/v1/auth/me': { probe: () => ({ path: '/api/v1/auth/me' }), expect: '401 200 200 200 200 200 200 200 200' },
  'POST /api/v1/auth/password': {
    probe: () => ({ path: '/api/v1/auth/password', body: {} }),
    expect: '401 400 400 400 403 403 403 403 403',
  },
  'POST /api/v1/auth/mfa/enable': {
    probe: () => ({ path: '/api/v1/auth/mfa/enable', body: {} }),
    expect: '401 400 400 400 403 403 403 403 403',
  },
  'POST /api/v1/auth/mfa/verify': {
    probe: () => ({ path: '/api/v1/auth/mfa/verify', body: {} }),
    expect: '401 400 400 400 403 403 403 403 403',
  },
  'POST /api/v1/auth/api-keys': {
    probe: () => ({ path: '/api/v1/auth/api-keys', body: {} }),
    expect: '401 400 400 400 403 403 403 403 403',
  },
  'GET /api/v1/auth/api-keys': { probe: () => ({ path: '/api/v1/auth/api-keys' }), expect: '401 200 200 200 403 403 403 403 403' },
  'DELETE /api/v1/auth/api-keys/:id': {
    probe: () => ({ path: `/api/v1/auth/api-keys/${MISSING}` }),
    expect: '401 404 404 404 403 403 403 403 403',
  },

  'GET /api/v1/admin/users': { probe: () => ({ path: '/api/v1/admin/users' }), expect: '401 403 403 200 403 403 403 403 403' },
  'PUT /api/v1/admin/users/:id/roles': {
    probe: (f) => ({ path: `/api/v1/admin/users/${f.user.userId}/roles`, body: {} }),
    expect: '401 403 403 400 403 403 403 403 403',
  },
  'POST /api/v1/admin/users/:id/suspend': {
    probe: () => ({ path: `/api/v1/admin/users/${MISSING}/suspend` }),
    expect: '401 403 403 404 403 403 403 403 403',
  },
  'POST /api/v1/admin/users/:id/reactivate': {
    probe: () => ({ path: `/api/v1/admin/users/${MISSING}/reactivate` }),
    expect: '401 403 403 404 403 403 403 403 403',
  },
  'POST /api/v1/admin/users/:id/mfa/reset': {
    probe: () => ({ path: `/api/v1/admin/users/${MISSING}/mfa/reset` }),
    expect: '401 403 403 404 403 403 403 403 403',
  },
  'GET /api/v1/admin/audit-logs': { probe: () => ({ path: '/api/v1/admin/audit-logs' }), expect: '401 403 403 200 403 403 403 403 403' },
  'GET /api/v1/admin/audit-logs/verify': {
    probe: () => ({ path: '/api/v1/admin/audit-logs/verify' }),
    expect: '401 403 403 200 403 403 403 403 403',
  },
  'GET /api/v1/admin/audit-logs/checkpoint': {
    probe: () => ({ path: '/api/v1/admin/audit-logs/checkpoint' }),
    expect: '401 403 403 200 403 403 403 403 403',
  },
  'GET /api/v1/admin/audit-logs/checkpoint-key': {
    probe: () => ({ path: '/api/v1/admin/audit-logs/checkpoint-key' }),
    expect: '401 403 403 200 403 403 403 403 403',
  },
  'GET /api/v1/admin/health': { probe: () => ({ path: '/api/v1/admin/health' }), expect: '401 403 403 200 403 403 403 403 403' },
  'PUT /api/v1/admin/tools/:id': {
    probe: () => ({ path: `/api/v1/admin/tools/${ECHO}`, body: { enabled: 'yes' } }),
    expect: '401 403 403 400 403 403 403 403 403',
  },
  'GET /api/v1/admin/tools/:id/approval': {
    probe: () => ({ path: `/api/v1/admin/tools/${MISSING}/approval` }),
    expect: '401 403 403 404 403 403 403 403 403',
  },
  'POST /api/v1/admin/tools/:id/approve': {
    probe: () => ({ path: `/api/v1/admin/tools/${MISSING}/approve`, body: {} }),
    expect: '401 403 403 400 403 403 403 403 403',
  },

  'GET /api/v1/tools': { probe: () => ({ path: '/api/v1/tools' }), expect: '401 200 200 200 200 200 200 200 200' },
  'GET /api/v1/tools/:id': { probe: () => ({ path: `/api/v1/tools/${ECHO}` }), expect: '401 200 200 200 200 200 200 200 200' },
  // user's own execution: its owner (and their unbound full key) and admin:executions:read only.
  'GET /api/v1/tools/executions/:executionId': {
    probe: (f) => ({ path: `/api/v1/tools/executions/${f.userExecution}` }),
    expect: '401 200 404 200 200 403 404 403 404',
  },
  'POST /api/v1/tools/:id/execute': {
    probe: () => ({ path: `/api/v1/tools/${ECHO}/execute`, body: { parameters: { message: 'matrix' } } }),
    expect: '401 200 200 200 200 403 200 403 200',
  },

  'GET /api/v1/contexts': { probe: () => ({ path: '/api/v1/contexts' }), expect: '401 200 200 200 200 200 403 200 403' },
  'POST /api/v1/contexts': { probe: () => ({ path: '/api/v1/contexts', body: {} }), expect: '401 400 400 400 400 403 403 403 403' },
  'GET /api/v1/contexts/:id': {
    probe: (f) => ({ path: `/api/v1/contexts/${f.userContext}` }),
    expect: '401 200 404 200 200 200 200 404 404',
  },
  'PUT /api/v1/contexts/:id': {
    probe: (f) => ({ path: `/api/v1/contexts/${f.userContext}`, body: { description: 'matrix' } }),
    expect: '401 200 404 200 200 403 403 403 403',
  },
  'DELETE /api/v1/contexts/:id': { probe: () => ({ path: `/api/v1/contexts/${MISSING}` }), expect: '401 404 404 404 404 403 403 403 403' },

  'GET /api/v1/sessions': { probe: () => ({ path: '/api/v1/sessions' }), expect: '401 200 200 200 200 200 200 200 200' },
  'POST /api/v1/sessions/:id/terminate': {
    probe: () => ({ path: `/api/v1/sessions/${MISSING}/terminate` }),
    expect: '401 404 404 404 403 403 403 403 403',
  },

  'POST /api/v1/mcp/tickets': { probe: () => ({ path: '/api/v1/mcp/tickets' }), expect: '401 200 200 200 200 403 200 403 200' },
  'POST /api/v1/mcp': { probe: () => mcpInit('/api/v1/mcp'), expect: '401 200 200 200 200 200 200 200 200' },
  'GET /api/v1/mcp': { probe: () => ({ path: '/api/v1/mcp', headers: MCP_STREAM_HEADERS }), expect: '401 400 400 400 400 400 400 400 400' },
  'DELETE /api/v1/mcp': { probe: () => ({ path: '/api/v1/mcp' }), expect: '401 400 400 400 400 400 400 400 400' },
  // A key bound to another context is told so (403); a context not yours does not exist (404).
  'POST /api/v1/contexts/:id/mcp': {
    probe: (f) => mcpInit(`/api/v1/contexts/${f.userContext}/mcp`),
    expect: '401 200 404 200 200 200 200 404 403',
  },
  'GET /api/v1/contexts/:id/mcp': {
    probe: (f) => ({ path: `/api/v1/contexts/${f.userContext}/mcp`, headers: MCP_STREAM_HEADERS }),
    expect: '401 400 404 400 400 400 400 404 403',
  },
  'DELETE /api/v1/contexts/:id/mcp': {
    probe: (f) => ({ path: `/api/v1/contexts/${f.userContext}/mcp` }),
    expect: '401 400 404 400 400 400 400 404 403',
  },

  'GET /api/v1/health': { probe: () => ({ path: '/api/v1/health' }), expect: '200 200 200 200 200 200 200 200 200' },
  'GET /api/v1/health/detailed': { probe: () => ({ path: '/api/v1/health/detailed' }), expect: '200 200 200 200 200 200 200 200 200' },
  'GET /api/v1/ready': { probe: () => ({ path: '/api/v1/ready' }), expect: '200 200 200 200 200 200 200 200 200' },
  'GET /api/v1/metrics': { probe: () => ({ path: '/api/v1/metrics' }), expect: '200 200 200 200 200 200 200 200 200' },
  'GET /.well-known/oauth-protected-resource': {
    probe: () => ({ path: '/.well-known/oauth-protected-resource' }),
    expect: '200 200 200 200 200 200 200 200 200',
  },
  'GET /.well-known/oauth-protected-resource/api/v1/mcp': {
    probe: () => ({ path: '/.well-known/oauth-protected-resource/api/v1/mcp' }),
    expect: '200 200 200 200 200 200 200 200 200',
  },
  'GET /.well-known/oauth-protected-resource/api/v1/contexts/:id/mcp': {
    probe: (f) => ({ path: `/.well-known/oauth-protected-resource/api/v1/contexts/${f.userContext}/mcp` }),
    expect: '200 200 200 200 200 200 200 200 200',
  },

  // The OAuth authorization server: public protocol endpoints (their own client authentication,
  // PKCE and cookies decide), and the sign-in pages, which need the browser's interaction cookie.
  'GET /.well-known/oauth-authorization-server': {
    probe: () => ({ path: '/.well-known/oauth-authorization-server' }),
    expect: '200 200 200 200 200 200 200 200 200',
  },
  'GET /.well-known/openid-configuration': {
    probe: () => ({ path: '/.well-known/openid-configuration' }),
    expect: '200 200 200 200 200 200 200 200 200',
  },
  'GET /oauth/*': { probe: () => ({ path: '/oauth/jwks' }), expect: '200 200 200 200 200 200 200 200 200' },
  'POST /oauth/*': { probe: () => ({ path: '/oauth/token', body: {} }), expect: '400 400 400 400 400 400 400 400 400' },
  'GET /oauth/interaction/:uid': {
    probe: () => ({ path: `/oauth/interaction/${MISSING}` }),
    expect: '400 400 400 400 400 400 400 400 400',
  },
  'POST /oauth/interaction/:uid/login': {
    probe: () => ({ path: `/oauth/interaction/${MISSING}/login`, body: {} }),
    expect: '400 400 400 400 400 400 400 400 400',
  },
  'POST /oauth/interaction/:uid/consent': {
    probe: () => ({ path: `/oauth/interaction/${MISSING}/consent`, body: {} }),
    expect: '400 400 400 400 400 400 400 400 400',
  },
  'POST /oauth/interaction/:uid/idp': {
    probe: () => ({ path: `/oauth/interaction/${MISSING}/idp`, body: {} }),
    expect: '400 400 400 400 400 400 400 400 400',
  },
  'GET /api/v1/auth/oauth/grants': { probe: () => ({ path: '/api/v1/auth/oauth/grants' }), expect: '401 200 200 200 403 403 403 403 403' },
  'DELETE /api/v1/auth/oauth/grants/:id': {
    probe: () => ({ path: `/api/v1/auth/oauth/grants/${MISSING}` }),
    expect: '401 404 404 404 403 403 403 403 403',
  },
  'DELETE /api/v1/admin/oauth/grants/:id': {
    probe: () => ({ path: `/api/v1/admin/oauth/grants/${MISSING}` }),
    expect: '401 403 403 404 403 403 403 403 403',
  },
  'POST /api/v1/admin/oauth/clients': {
    probe: () => ({ path: '/api/v1/admin/oauth/clients', body: {} }),
    expect: '401 403 403 400 403 403 403 403 403',
  },
  'GET /api/v1/admin/oauth/clients': {
    probe: () => ({ path: '/api/v1/admin/oauth/clients' }),
    expect: '401 403 403 200 403 403 403 403 403',
  },
  // Federated prompts and resources (extension): tools:execute, a bound key within its context; no upstream here.
  'GET /api/v1/prompts': { probe: () => ({ path: '/api/v1/prompts' }), expect: '401 200 200 200 200 403 200 403 200' },
  'GET /api/v1/prompts/:name': { probe: () => ({ path: `/api/v1/prompts/${MISSING}` }), expect: '401 404 404 404 404 403 404 403 404' },
  'POST /api/v1/prompts/:name/render': {
    probe: () => ({ path: `/api/v1/prompts/${MISSING}/render`, body: { arguments: {} } }),
    expect: '401 404 404 404 404 403 404 403 404',
  },
  'GET /api/v1/resources': { probe: () => ({ path: '/api/v1/resources' }), expect: '401 200 200 200 200 403 200 403 200' },
  'GET /api/v1/resources/templates': {
    probe: () => ({ path: '/api/v1/resources/templates' }),
    expect: '401 200 200 200 200 403 200 403 200',
  },
  'GET /api/v1/resources/read': {
    probe: () => ({ path: `/api/v1/resources/read?uri=${encodeURIComponent(`mcp-upstream://${MISSING}/x`)}` }),
    expect: '401 404 404 404 404 403 404 403 404',
  },
  // Enterprise IdP sign-in (extension): public; no provider is configured here.
  'GET /api/v1/auth/oidc': { probe: () => ({ path: '/api/v1/auth/oidc' }), expect: '200 200 200 200 200 200 200 200 200' },
  'GET /api/v1/auth/oidc/:provider': {
    probe: () => ({ path: `/api/v1/auth/oidc/${MISSING}` }),
    expect: '404 404 404 404 404 404 404 404 404',
  },
  'GET /api/v1/auth/oidc/:provider/callback': {
    probe: () => ({ path: `/api/v1/auth/oidc/${MISSING}/callback` }),
    expect: '404 404 404 404 404 404 404 404 404',
  },
  'DELETE /api/v1/admin/oauth/clients/:id': {
    probe: () => ({ path: `/api/v1/admin/oauth/clients/${MISSING}` }),
    expect: '401 403 403 404 403 403 403 403 403',
  },
  // The user-oauth connect pages: a browser signed in on the OAuth sign-in pages (their cookie), never a bearer
  // token; a link, a sign-in state or a callback state it does not hold is refused whoever asks.
  'GET /connect/upstream/:ticket': {
    probe: () => ({ path: `/connect/upstream/${MISSING}` }),
    expect: '400 400 400 400 400 400 400 400 400',
  },
  'GET /connect/signed-in': { probe: () => ({ path: '/connect/signed-in?state=x' }), expect: '400 400 400 400 400 400 400 400 400' },
  'GET /connect/callback': { probe: () => ({ path: '/connect/callback?state=x&code=y' }), expect: '400 400 400 400 400 400 400 400 400' },
  // The connections page: the same sign-in cookie; a bearer token is no sign-in: sent to sign in (the sign-in page,
  // followed without the browser's cookies, answers 400 "opened in another browser"), and its forms
  // without this browser's cookie and the anti-forgery token bound to it and the user are refused whoever asks.
  'GET /connect': { probe: () => ({ path: '/connect' }), expect: '400 400 400 400 400 400 400 400 400' },
  'POST /connect/disconnect': {
    probe: () => ({ path: '/connect/disconnect', body: { upstream: MISSING } }),
    expect: '403 403 403 403 403 403 403 403 403',
  },
  'POST /connect/start': {
    probe: () => ({ path: '/connect/start', body: { upstream: MISSING } }),
    expect: '403 403 403 403 403 403 403 403 403',
  },
  'POST /connect/secret': {
    probe: () => ({ path: '/connect/secret', body: { upstream: MISSING, secret: 'x' } }),
    expect: '403 403 403 403 403 403 403 403 403',
  },
  // Each user's own upstream credentials (extension): tools:execute with a user login (no API key sets or reads them).
  'GET /api/v1/upstream-connections': {
    probe: () => ({ path: '/api/v1/upstream-connections' }),
    expect: '401 200 200 200 403 403 403 403 403',
  },
  'PUT /api/v1/upstream-connections/:upstream': {
    probe: () => ({ path: `/api/v1/upstream-connections/${MISSING}`, body: {} }),
    expect: '401 400 400 400 403 403 403 403 403',
  },
  'DELETE /api/v1/upstream-connections/:upstream': {
    probe: () => ({ path: `/api/v1/upstream-connections/${MISSING}` }),
    expect: '401 404 404 404 403 403 403 403 403',
  },
  // Who is connected to what: admins (admin:users:read), never a secret.
  'GET /api/v1/admin/upstream-connections': {
    probe: () => ({ path: '/api/v1/admin/upstream-connections' }),
    expect: '401 403 403 200 403 403 403 403 403',
  },
};

/** The API documentation (Swagger UI and its assets) is public; one probe stands for its routes. */
const DOCS_PREFIX = '/api/docs';

describe('authorization matrix (PostgreSQL)', () => {
  let t: TestApp;
  let f: Fixture;

  beforeAll(async () => {
    t = await startTestApp('postgres', { env: toolsEnv() });
    const user = await signUp(t, 'matrix.user@example.com');
    const developer = await signUp(t, 'matrix.dev@example.com');
    const admin = await login(t, ADMIN_EMAIL);
    const promoted = await http(t.baseUrl, 'PUT', `/api/v1/admin/users/${developer.userId}/roles`, {
      token: admin.token,
      body: { roles: ['developer'] },
    });
    if (promoted.status !== 200) throw new Error(`promote: ${promoted.status} ${promoted.text}`);
    const userContext = await createContext(t, user, 'matrix-user', [ECHO]);
    const userOtherContext = await createContext(t, user, 'matrix-user-other', [ECHO]);
    const adminContext = await createContext(t, admin, 'matrix-admin', [ECHO]);
    const ran = await execute(t, user, ECHO, { parameters: { message: 'mine' } });
    if (ran.status !== 200) throw new Error(`execute: ${ran.status} ${ran.text}`);
    f = {
      user,
      developer,
      admin,
      userContext,
      userOtherContext,
      adminContext,
      userExecution: ran.body.executionId,
      keys: {
        fullKey: (await createApiKey(t, user, { name: 'full' })).key,
        restrictedKey: (await createApiKey(t, user, { name: 'restricted', permissions: RESTRICTED })).key,
        boundKey: (await createApiKey(t, user, { name: 'bound', contextId: userContext })).key,
        adminRestrictedKey: (await createApiKey(t, admin, { name: 'admin-restricted', permissions: RESTRICTED })).key,
        adminBoundKey: (await createApiKey(t, admin, { name: 'admin-bound', contextId: adminContext })).key,
      },
    };
  });

  afterAll(async () => {
    await t?.close();
  });

  const emails: Partial<Record<Who, string>> = { user: 'matrix.user@example.com', developer: 'matrix.dev@example.com', admin: ADMIN_EMAIL };

  async function credentialOf(who: Who, fresh: boolean): Promise<string | undefined> {
    if (who === 'anonymous') return undefined;
    if (who === 'user' || who === 'developer' || who === 'admin') {
      if (!fresh) return f[who].token;
      return (await login(t, emails[who]!)).token;
    }
    return f.keys[who];
  }

  function send(method: string, probe: Probe, token: string | undefined): Promise<HttpResult> {
    return http(t.baseUrl, method, probe.path, { token, body: probe.body, headers: probe.headers });
  }

  it('has one row for every route the server registers, and no row for a route it lacks', () => {
    const fastify = t.app.getHttpAdapter().getInstance() as unknown as FastifyInstance;
    const registry = RouteRegistry.of(fastify);
    expect(registry).toBeDefined();
    const served = registry!
      .routes()
      .filter((route) => route.method !== 'HEAD' && route.method !== 'OPTIONS' && !route.url.startsWith(DOCS_PREFIX))
      .map((route) => `${route.method} ${route.url}`);
    const withoutRow = served.filter((route) => !(route in MATRIX));
    const withoutRoute = Object.keys(MATRIX).filter((route) => !served.includes(route));
    expect({ withoutRow, withoutRoute }).toEqual({ withoutRow: [], withoutRoute: [] });
    // The documentation routes exist and are covered by the public probe below.
    expect(registry!.routes().some((route) => route.url.startsWith(DOCS_PREFIX))).toBe(true);
  });

  it('has a row for every operation of the served OpenAPI document', async () => {
    const document = await http(t.baseUrl, 'GET', '/api/docs-json');
    expect(document.status).toBe(200);
    const operations = Object.entries(document.body.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((method) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
        .map((method) => `${method.toUpperCase()} /api/v1${path.replace(/\{([^}]+)\}/g, ':$1')}`),
    );
    expect(operations.length).toBeGreaterThan(20);
    expect(operations.filter((operation) => !(operation in MATRIX))).toEqual([]);
  });

  it('answers every route for every kind of caller with the expected status', async () => {
    const mismatches: string[] = [];
    for (const [route, row] of Object.entries(MATRIX)) {
      const method = route.split(' ')[0];
      const probe = row.probe(f);
      const expected = row.expect.split(' ').map(Number);
      expect(expected).toHaveLength(WHO.length);
      const statuses = await Promise.all(
        WHO.map(async (who) => (await send(method, probe, await credentialOf(who, probe.fresh === true))).status),
      );
      WHO.forEach((who, i) => {
        if (statuses[i] !== expected[i]) mismatches.push(`${route} as ${who}: ${statuses[i]}, expected ${expected[i]}`);
      });
    }
    expect(mismatches).toEqual([]);
  });

  it('serves the API documentation to anyone', async () => {
    for (const who of WHO)
      expect((await http(t.baseUrl, 'GET', '/api/docs-json', { token: await credentialOf(who, false) })).status).toBe(200);
  });

  describe('the holes the assessment found stay closed', () => {
    it("an API key cannot take over its owner's MFA, even with a valid request", async () => {
      for (const key of [f.keys.fullKey, f.keys.restrictedKey, f.keys.boundKey]) {
        const enable = await http(t.baseUrl, 'POST', '/api/v1/auth/mfa/enable', { token: key, body: { type: 'totp' } });
        expect(enable.status).toBe(403);
        expect(enable.body.error).toBe('INTERACTIVE_LOGIN_REQUIRED');
        expect(enable.body.secret).toBeUndefined();
        expect(
          (await http(t.baseUrl, 'POST', '/api/v1/auth/mfa/verify', { token: key, body: { type: 'totp', code: '123456' } })).status,
        ).toBe(403);
      }
      // The owner's login still works without a second factor.
      expect((await http(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { email: emails.user, password: PASSWORD } })).status).toBe(200);
    });

    it("an admin's restricted key sees only the admin's own contexts, sessions and executions", async () => {
      const token = f.keys.adminRestrictedKey;
      const contexts = await http(t.baseUrl, 'GET', '/api/v1/contexts?limit=100', { token });
      expect(contexts.status).toBe(200);
      const ids = contexts.body.contexts.map((c: { id: string }) => c.id);
      expect(ids).toContain(f.adminContext);
      expect(ids).not.toContain(f.userContext);
      expect(ids).not.toContain(f.userOtherContext);
      const sessions = await http(t.baseUrl, 'GET', '/api/v1/sessions?limit=100', { token });
      expect(sessions.status).toBe(200);
      expect([...new Set(sessions.body.sessions.map((s: { userId: string }) => s.userId))]).toEqual([f.admin.userId]);
      expect((await http(t.baseUrl, 'GET', `/api/v1/contexts?userId=${f.user.userId}`, { token })).status).toBe(403);
      expect((await http(t.baseUrl, 'GET', `/api/v1/sessions?userId=${f.user.userId}`, { token })).status).toBe(403);
      // The admin's own login still sees everyone's.
      const all = await http(t.baseUrl, 'GET', '/api/v1/contexts?limit=100', { token: f.admin.token });
      expect(all.body.contexts.map((c: { id: string }) => c.id)).toContain(f.userContext);
    });

    it("an admin's key reaches exactly the admin routes its list names; bound, none", async () => {
      const auditor = await createApiKey(t, f.admin, { name: 'auditor', permissions: ['admin:audit:read'] });
      expect((await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs', { token: auditor.key })).status).toBe(200);
      expect((await http(t.baseUrl, 'GET', '/api/v1/admin/users', { token: auditor.key })).status).toBe(403);
      const boundAuditor = await createApiKey(t, f.admin, {
        name: 'bound-auditor',
        permissions: ['admin:audit:read', 'tools:read'],
        contextId: f.adminContext,
      });
      expect((await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs', { token: boundAuditor.key })).status).toBe(403);
      expect((await http(t.baseUrl, 'GET', '/api/v1/tools', { token: boundAuditor.key })).status).toBe(200);
    });

    it('a bound key cannot run a call in another context through context.contextId', async () => {
      const other = await http(t.baseUrl, 'POST', `/api/v1/tools/${ECHO}/execute`, {
        token: f.keys.boundKey,
        body: { parameters: { message: 'escape' }, context: { contextId: f.userOtherContext } },
      });
      // Refused as its MCP endpoints refuse it (the one ExecutionScopeResolver): told it is bound elsewhere.
      expect(other.status).toBe(403);
      expect(other.body.error).toBe('FORBIDDEN');
      // Its own context, named or implied, works.
      const own = await http(t.baseUrl, 'POST', `/api/v1/tools/${ECHO}/execute`, {
        token: f.keys.boundKey,
        body: { parameters: { message: 'home' }, context: { contextId: f.userContext } },
      });
      expect(own.status).toBe(200);
    });

    it("a bound key sees only its context's sessions and cannot end its owner's login session", async () => {
      const owner = await login(t, emails.user!);
      const sessions = await http(t.baseUrl, 'GET', '/api/v1/sessions?limit=100', { token: f.keys.boundKey });
      expect(sessions.status).toBe(200);
      expect(sessions.body.sessions.length).toBeGreaterThan(0);
      expect([...new Set(sessions.body.sessions.map((s: { contextId: string | null }) => s.contextId))]).toEqual([f.userContext]);
      const terminate = await http(t.baseUrl, 'POST', `/api/v1/sessions/${owner.sessionId}/terminate`, { token: f.keys.boundKey });
      expect(terminate.status).toBe(403);
      expect((await http(t.baseUrl, 'GET', '/api/v1/auth/me', { token: owner.token })).status).toBe(200);
    });

    it("a bound key cannot read its owner's executions from outside its context", async () => {
      const res = await http(t.baseUrl, 'GET', `/api/v1/tools/executions/${f.userExecution}`, { token: f.keys.boundKey });
      expect(res.status).toBe(404);
      expect(res.body.input).toBeUndefined();
      const inContext = await http(t.baseUrl, 'POST', `/api/v1/tools/${ECHO}/execute`, {
        token: f.keys.boundKey,
        body: { parameters: { message: 'kept' } },
      });
      expect(inContext.status).toBe(200);
      const read = await http(t.baseUrl, 'GET', `/api/v1/tools/executions/${inContext.body.executionId}`, { token: f.keys.boundKey });
      expect(read.status).toBe(200);
      expect(read.body.result).toEqual({ message: 'kept' });
    });

    it("a key's queued (async) call runs within the key's permissions, not its owner's", async () => {
      await expectQueuedCallWithinKey(t, f.developer);
    });

    it('bound and restricted keys reach no other context over MCP WebSocket either', async () => {
      const ws = t.baseUrl.replace('http', 'ws');
      const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
      expect(await upgradeStatus(`${ws}/api/v1/contexts/${f.userContext}/mcp/ws`, bearer(f.keys.adminRestrictedKey))).toBe(404);
      expect(await upgradeStatus(`${ws}/api/v1/contexts/${f.userContext}/mcp/ws`, bearer(f.keys.adminBoundKey))).toBe(403);
      expect(await upgradeStatus(`${ws}/api/v1/contexts/${f.userOtherContext}/mcp/ws`, bearer(f.keys.boundKey))).toBe(403);
      expect(await upgradeStatus(`${ws}/api/v1/contexts/${f.userContext}/mcp/ws`, bearer(f.keys.boundKey))).toBe(101);
      expect(await upgradeStatus(`${ws}/api/v1/contexts/${f.adminContext}/mcp/ws`, bearer(f.keys.adminBoundKey))).toBe(101);
    });
  });
});

/** The developer may write files; a key of theirs that may only read tools and execute must not, queued or not. */
async function expectQueuedCallWithinKey(t: TestApp, developer: Caller): Promise<void> {
  const narrow = await createApiKey(t, developer, { name: 'no-write', permissions: ['tools:read', 'tools:execute'] });
  const write = { operation: 'write', path: 'matrix/key.txt', content: 'x', createDirectories: true };
  const queued = await http(t.baseUrl, 'POST', '/api/v1/tools/tool_filesystem/execute', {
    token: narrow.key,
    body: { parameters: write, options: { async: true } },
  });
  expect(queued.status).toBe(200);
  expect(queued.body.status).toBe('pending');
  const ran = await waitForExecution(t, { ...developer, token: narrow.key }, queued.body.executionId);
  expect(ran.body.status).toBe('failed');
  expect(ran.body.error.code).toBe('PERMISSION_DENIED');
  // The developer's own login may.
  const own = await http(t.baseUrl, 'POST', '/api/v1/tools/tool_filesystem/execute', {
    token: developer.token,
    body: { parameters: { ...write, path: 'matrix/own.txt' }, options: { async: true } },
  });
  expect((await waitForExecution(t, developer, own.body.executionId)).body.status).toBe('completed');
}

// The narrowing travels in a stored column: the embedded database keeps it too.
describe("a key's queued call (embedded database)", () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp('embedded', { env: toolsEnv() });
  });

  afterAll(async () => {
    await t?.close();
  });

  it("runs within the key's permissions, not its owner's", async () => {
    const developer = await signUp(t, 'queued.dev@example.com');
    const admin = await login(t, ADMIN_EMAIL);
    expect(
      (
        await http(t.baseUrl, 'PUT', `/api/v1/admin/users/${developer.userId}/roles`, {
          token: admin.token,
          body: { roles: ['developer'] },
        })
      ).status,
    ).toBe(200);
    await expectQueuedCallWithinKey(t, developer);
  });
});
