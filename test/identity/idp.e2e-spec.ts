import type { Client } from '@modelcontextprotocol/client';
import { createPublicKey, JsonWebKey } from 'node:crypto';
import { generateKeyPair, importJWK, SignJWT, UnsecuredJWT } from 'jose';
import { Browser, chromium } from 'playwright-core';
import { DataSource } from 'typeorm';
import { connectHttp, listAll } from '../mcp/mcp-test-kit';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../support/browser';
import { errorBodyProblem, expectError } from '../support/error-body';
import { ADMIN_EMAIL, identityEnv, login, PASSWORD, signUp } from '../support/identity';
import { waitFor } from '../support/polling';
import { DATABASE_KINDS, http, startTestApp, TestApp } from '../support/test-app';
import { CorporateIdp, corpIdpEnv, IDP_AUDIENCE, IDP_CLIENT_ID, IdpAccount } from './corporate-idp';

const KINDS = process.env.IDP_KINDS ? (process.env.IDP_KINDS.split(',') as typeof DATABASE_KINDS) : DATABASE_KINDS;

/**
 * Enterprise identity providers against a real OpenID provider (oidc-provider on loopback as the
 * "corporate IdP"): sign-in through its own pages in headless Chromium, its access tokens on MCP
 * and REST, key rotation, forged and misdirected tokens, the linking rules, and domains that must
 * sign in through it.
 */
describe.each(KINDS)('enterprise identity provider (%s)', (kind) => {
  let idp: CorporateIdp;
  let t: TestApp;
  let browser: Browser;
  let db: DataSource;
  const clients: Client[] = [];

  const account = (sub: string, email: string, groups: string[], verified = true): IdpAccount => {
    const entry = { sub, email, email_verified: verified, name: sub, groups };
    idp.accounts.set(sub, entry);
    return entry;
  };

  /** Signs in through the IdP's own login and consent pages in Chromium; the callback's status and JSON body. */
  const signInInBrowser = async (login: string): Promise<{ status: number; headers: Record<string, string>; body: any }> => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const callback = page.waitForResponse((response) => response.url().includes('/api/v1/auth/oidc/corp/callback'));
      await page.goto(`${t.baseUrl}/api/v1/auth/oidc/corp`);
      const loginPage = page.url();
      expect(loginPage.startsWith(idp.issuer)).toBe(true);
      await page.fill('input[name="login"]', login);
      await page.fill('input[name="password"]', 'any password the dev IdP accepts');
      await page.click('button[type="submit"]');
      await page.waitForURL((url) => url.href !== loginPage);
      // The consent page (each new browser context is a first sign-in at the IdP).
      if (page.url().startsWith(idp.issuer)) await page.click('button[type="submit"]');
      const response = await callback;
      return { status: response.status(), headers: await response.allHeaders(), body: await response.json() };
    } finally {
      await context.close();
    }
  };

  const roleOf = async (userId: string): Promise<string[]> => (await db.query(`SELECT roles FROM users WHERE id = $1`, [userId]))[0].roles;
  const auditOf = async (action: string, userId: string | null) =>
    db.query(`SELECT details FROM audit_logs WHERE action = $1 AND user_id IS NOT DISTINCT FROM $2 ORDER BY timestamp`, [action, userId]);

  beforeAll(async () => {
    idp = await CorporateIdp.start();
    t = await startTestApp(kind, {
      env: identityEnv(
        corpIdpEnv(idp, {
          IDP_CORP_EMAIL_DOMAINS: 'corp.example,partner.example,linked.example',
          IDP_CORP_TRUSTED_DOMAINS: 'corp.example,linked.example',
          IDP_CORP_REQUIRE_FOR_DOMAINS: 'corp.example',
          IDP_JWKS_COOLDOWN_MS: '100',
        }),
      ),
    });
    await idp.configure([`${t.baseUrl}/api/v1/auth/oidc/corp/callback`]);
    db = t.app.get(DataSource);
    // Playwright gives the browser a fresh, temporary profile (--user-data-dir) of its own.
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await browser?.close();
    await t?.close();
    await idp?.close();
  });

  describe('sign-in through the IdP (Chromium)', () => {
    it('creates the account just in time with the roles its groups map to, and answers like POST /auth/login', async () => {
      account('alice', 'alice@corp.example', ['gw-admins']);
      const { status, body } = await signInInBrowser('alice');
      expect(status).toBe(200);
      expect(body.tokenType).toBe('Bearer');
      expect(body.user.email).toBe('alice@corp.example');
      expect(body.user.roles).toEqual(['admin']);
      // Our tokens work like a password login's: an admin route, a refresh, and the session listed.
      expect((await http(t.baseUrl, 'GET', '/api/v1/admin/users', { token: body.accessToken })).status).toBe(200);
      const refreshed = await http(t.baseUrl, 'POST', '/api/v1/auth/refresh', { token: body.refreshToken });
      expect(refreshed.status).toBe(200);
      const created = await auditOf('auth.idp.account_created', body.user.id);
      expect(created).toHaveLength(1);
      expect(created[0].details).toMatchObject({ provider: 'corp', subject: 'alice', email: 'alice@corp.example', roles: ['admin'] });
      const logins = await auditOf('auth.login', body.user.id);
      expect(logins.map((row: { details: Record<string, unknown> }) => row.details)).toEqual([
        { method: 'oidc', provider: 'corp', created: true, linked: false },
      ]);
      const links = await db.query(`SELECT issuer, subject, user_id FROM identity_links WHERE user_id = $1`, [body.user.id]);
      expect(links).toEqual([{ issuer: idp.issuer, subject: 'alice', user_id: body.user.id }]);
    });

    it('re-evaluates roles at each sign-in and audits the change', async () => {
      const dave = account('dave', 'dave@corp.example', ['gw-developers']);
      const first = await signInInBrowser('dave');
      expect(first.body.user.roles).toEqual(['developer']);
      dave.groups = [];
      const second = await signInInBrowser('dave');
      expect(second.status).toBe(200);
      expect(second.body.user.id).toBe(first.body.user.id);
      expect(second.body.user.roles).toEqual(['user']);
      expect(await roleOf(first.body.user.id)).toEqual(['user']);
      const changes = await auditOf('auth.idp.roles_changed', first.body.user.id);
      expect(changes.map((row: { details: any }) => [row.details.from.roles, row.details.to.roles])).toEqual([[['developer'], ['user']]]);
    });

    it('links a verified email of a trusted domain to the existing local account, then keys on (issuer, subject)', async () => {
      const local = await signUp(t, 'bob@linked.example');
      const bob = account('bob-at-idp', 'bob@linked.example', []);
      const first = await signInInBrowser('bob-at-idp');
      expect(first.status).toBe(200);
      expect(first.body.user.id).toBe(local.userId);
      expect((await auditOf('auth.idp.linked', local.userId))[0].details).toMatchObject({
        subject: 'bob-at-idp',
        email: 'bob@linked.example',
      });
      // The IdP changes the email: the identity still signs in as the same account, never by email.
      bob.email = 'robert@linked.example';
      const second = await signInInBrowser('bob-at-idp');
      expect(second.status).toBe(200);
      expect(second.body.user.id).toBe(local.userId);
    });

    it('refuses to link an unverified email to an existing account (takeover attempt), and audits it', async () => {
      const victim = await signUp(t, 'victim@partner.example');
      account('mallory', 'victim@partner.example', [], false);
      const { status, headers, body } = await signInInBrowser('mallory');
      expect(status).toBe(409);
      expect(body.error).toBe('IDP_LINK_REFUSED');
      expect(errorBodyProblem({ status, headers: new Headers(headers), body })).toBeNull();
      expect(await db.query(`SELECT 1 FROM identity_links WHERE subject = 'mallory'`)).toEqual([]);
      const refused = await auditOf('auth.idp.refused', null);
      expect(refused.map((row: { details: any }) => row.details).filter((d: any) => d.subject === 'mallory')).toEqual([
        { reason: 'email_not_verified', provider: 'corp', subject: 'mallory', email: 'victim@partner.example' },
      ]);
      // The victim's password still works and nothing else reached the account.
      expect((await login(t, 'victim@partner.example')).userId).toBe(victim.userId);
    });

    it('refuses to link even a verified email when the IdP is not trusted for its domain', async () => {
      await signUp(t, 'carla@partner.example');
      account('carla-at-idp', 'carla@partner.example', []);
      const { status, body } = await signInInBrowser('carla-at-idp');
      expect(status).toBe(409);
      expect(body.error).toBe('IDP_LINK_REFUSED');
    });

    it('lists the providers, and refuses a callback without the sign-in state cookie (CSRF / replay)', async () => {
      const res = await http(t.baseUrl, 'GET', '/api/v1/auth/oidc/corp/callback?code=forged&state=forged');
      expectError(res, 401, 'IDP_SIGN_IN_FAILED');
      const listed = await http(t.baseUrl, 'GET', '/api/v1/auth/oidc');
      expect(listed.body).toEqual({ providers: [{ name: 'corp', displayName: 'Corp SSO', signInPath: '/api/v1/auth/oidc/corp' }] });
      const unknown = await http(t.baseUrl, 'GET', '/api/v1/auth/oidc/nope');
      expectError(unknown, 404, 'IDP_UNKNOWN_PROVIDER');
    });

    it('starts with PKCE S256, state and nonce, keeping them in a sealed, HttpOnly, callback-scoped cookie', async () => {
      const start = await fetch(`${t.baseUrl}/api/v1/auth/oidc/corp`, { redirect: 'manual' });
      expect(start.status).toBe(302);
      expect(start.headers.get('cache-control')).toBe('no-store');
      const location = new URL(start.headers.get('location')!);
      expect(`${location.origin}`).toBe(idp.issuer);
      const query = Object.fromEntries(location.searchParams);
      expect(query).toMatchObject({
        client_id: IDP_CLIENT_ID,
        response_type: 'code',
        code_challenge_method: 'S256',
        scope: 'openid email profile groups',
        redirect_uri: `${t.baseUrl}/api/v1/auth/oidc/corp/callback`,
      });
      for (const param of ['state', 'nonce', 'code_challenge']) expect(query[param]).toMatch(/^[\w-]{22,}$/);
      const cookie = start.headers.get('set-cookie')!;
      const [pair, ...attributes] = cookie.split('; ');
      expect(attributes).toEqual(['Path=/api/v1/auth/oidc/corp/callback', 'Max-Age=600', 'HttpOnly', 'SameSite=Lax']);
      // Sealed: neither the state nor the PKCE verifier can be read from it.
      expect(pair).not.toContain(query.state);
      expect(Buffer.from(pair.split('.')[1] ?? '', 'base64url').toString()).not.toContain(query.state);

      const callback = (search: string, sentCookie = pair) =>
        http(t.baseUrl, 'GET', `/api/v1/auth/oidc/corp/callback?${search}`, { headers: { cookie: sentCookie } });
      // The IdP's refusal, a state that is not the cookie's, and a tampered cookie: 401, nothing signed in.
      const refused = await callback(`error=access_denied&state=${query.state}&iss=${encodeURIComponent(idp.issuer)}`);
      expectError(refused, 401, 'IDP_SIGN_IN_FAILED');
      expect(refused.body.message).toBe('Corp SSO refused the sign-in (access_denied)');
      expect(refused.headers.get('set-cookie')).toMatch(/^smcp_oidc_corp=; Path=\/api\/v1\/auth\/oidc\/corp\/callback; Max-Age=0;/);
      expectError(await callback(`code=abc&state=not-the-one&iss=${encodeURIComponent(idp.issuer)}`), 401, 'IDP_SIGN_IN_FAILED');
      const tampered = pair.slice(0, -4) + (pair.endsWith('AAAA') ? 'BBBB' : 'AAAA');
      const forged = await callback(`code=abc&state=${query.state}`, tampered);
      expectError(forged, 401, 'IDP_SIGN_IN_FAILED');
      expect(forged.body.message).toBe('No sign-in in progress, or it expired: start again at GET /api/v1/auth/oidc/corp');
    });
  });

  describe('domains that must sign in through the IdP', () => {
    it('refuses password login and registration for them with a clear error', async () => {
      const loginRes = await http(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { email: 'alice@corp.example', password: PASSWORD } });
      const details = expectError(loginRes, 403, 'IDP_SIGN_IN_REQUIRED');
      expect(details).toEqual([]);
      expect(loginRes.body.message).toBe('Accounts of this email domain sign in through Corp SSO: GET /api/v1/auth/oidc/corp');
      const register = await http(t.baseUrl, 'POST', '/api/v1/auth/register', {
        body: { email: 'new@corp.example', password: PASSWORD, name: 'New' },
      });
      expectError(register, 403, 'IDP_SIGN_IN_REQUIRED');
      // Other domains keep local accounts and passwords.
      expect((await login(t, ADMIN_EMAIL)).token).toEqual(expect.any(String));
    });
  });

  describe('the IdP’s access tokens as bearer credentials', () => {
    it('are accepted on /api/v1/mcp (list and call a tool) and REST with the permissions their groups map to', async () => {
      account('erin', 'erin@corp.example', ['gw-admins']);
      const token = await idp.accessToken('erin');
      const me = await http(t.baseUrl, 'GET', '/api/v1/auth/me', { token });
      expect(me.status).toBe(200);
      expect(me.body.email).toBe('erin@corp.example');
      expect(me.body.roles).toEqual(['admin']);
      expect((await http(t.baseUrl, 'GET', '/api/v1/admin/users', { token })).status).toBe(200);
      // Credential management needs our own login, not an IdP token.
      expectError(await http(t.baseUrl, 'POST', '/api/v1/auth/logout', { token }), 403, 'INTERACTIVE_LOGIN_REQUIRED');

      for (const era of ['modern', 'legacy'] as const) {
        const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, token, era);
        clients.push(client);
        expect(await listAll(client)).toContain('tool_echo');
        const result = await client.callTool({ name: 'tool_echo', arguments: { message: `idp ${era}` } });
        expect(result.isError).toBeFalsy();
        expect(result.structuredContent).toMatchObject({ message: `idp ${era}` });
      }
      // The 2025-era session has no gateway session above it: recorded as none, not as ''.
      const opened = await auditOf('mcp.session.opened', me.body.id);
      expect(opened.length).toBeGreaterThanOrEqual(1);
      for (const row of opened) expect(row.details).toMatchObject({ via: 'idp', parentSessionId: null });
      // A REST tool call with the IdP token counts in no session (NULL, not ''), and is answered normally.
      const executed = await http(t.baseUrl, 'POST', '/api/v1/tools/tool_echo/execute', {
        token,
        body: { parameters: { message: 'rest' } },
      });
      expect(executed.status).toBe(200);
      const rows = await db.query(`SELECT session_id FROM tool_executions WHERE user_id = $1 AND input::text LIKE '%rest%'`, [me.body.id]);
      expect(rows).toEqual([{ session_id: null }]);
    });

    it('reach only what their groups map to', async () => {
      account('frank', 'frank@corp.example', []);
      const token = await idp.accessToken('frank');
      expect((await http(t.baseUrl, 'GET', '/api/v1/auth/me', { token })).body.roles).toEqual(['user']);
      expectError(await http(t.baseUrl, 'GET', '/api/v1/admin/users', { token }), 403, 'FORBIDDEN');
    });

    it('picks up a rotated signing key', async () => {
      account('gina', 'gina@corp.example', []);
      expect((await http(t.baseUrl, 'GET', '/api/v1/auth/me', { token: await idp.accessToken('gina') })).status).toBe(200);
      const kid = await idp.rotateKey();
      const rotated = await idp.accessToken('gina');
      expect(JSON.parse(Buffer.from(rotated.split('.')[0], 'base64url').toString()).kid).toBe(kid);
      await waitFor(
        'the rotated key to be accepted',
        async () => (await http(t.baseUrl, 'GET', '/api/v1/auth/me', { token: rotated })).status === 200,
      );
    });

    it('refuses tokens of another issuer, for another audience, expired, unsigned, or HMAC-signed with the public key', async () => {
      account('hank', 'hank@corp.example', []);
      const key = idp.signingKey;
      const privateKey = await importJWK(key, 'RS256');
      const claims = { sub: 'hank', email: 'hank@corp.example', email_verified: true };
      const now = Math.floor(Date.now() / 1000);
      const signed = (payload: Record<string, unknown>, exp: number) =>
        new SignJWT(payload)
          .setProtectedHeader({ alg: 'RS256', kid: key.kid })
          .setIssuedAt(now - 60)
          .setExpirationTime(exp)
          .sign(privateKey);

      const other = await generateKeyPair('RS256');
      const otherIssuer = await new SignJWT({ ...claims, iss: 'https://idp.other.example', aud: IDP_AUDIENCE })
        .setProtectedHeader({ alg: 'RS256', kid: 'other' })
        .setExpirationTime(now + 600)
        .sign(other.privateKey);
      const forged = await new SignJWT({ ...claims, iss: idp.issuer, aud: IDP_AUDIENCE })
        .setProtectedHeader({ alg: 'RS256', kid: key.kid })
        .setExpirationTime(now + 600)
        .sign(other.privateKey);
      const wrongAudience = await idp.accessToken('hank', { audience: 'api://another-service' });
      const expired = await signed({ ...claims, iss: idp.issuer, aud: IDP_AUDIENCE }, now - 3600);
      const unsigned = new UnsecuredJWT({ ...claims, iss: idp.issuer, aud: IDP_AUDIENCE }).setExpirationTime(now + 600).encode();
      const publicPem = createPublicKey({ key: key as JsonWebKey, format: 'jwk' }).export({ format: 'pem', type: 'spki' });
      const hmacConfusion = await new SignJWT({ ...claims, iss: idp.issuer, aud: IDP_AUDIENCE })
        .setProtectedHeader({ alg: 'HS256', kid: key.kid })
        .setExpirationTime(now + 600)
        .sign(new TextEncoder().encode(String(publicPem)));
      // The control: the same claims, properly signed, are accepted.
      expect(
        (
          await http(t.baseUrl, 'GET', '/api/v1/auth/me', {
            token: await signed({ ...claims, iss: idp.issuer, aud: IDP_AUDIENCE }, now + 600),
          })
        ).status,
      ).toBe(200);

      for (const [what, token] of Object.entries({ otherIssuer, forged, wrongAudience, expired, unsigned, hmacConfusion })) {
        const rest = await http(t.baseUrl, 'GET', '/api/v1/auth/me', { token });
        expect({ what, status: rest.status }).toEqual({ what, status: 401 });
        expectError(rest, 401, 'UNAUTHORIZED');
        const mcp = await http(t.baseUrl, 'POST', '/api/v1/mcp', {
          token,
          headers: { accept: 'application/json, text/event-stream' },
          body: { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} },
        });
        expect({ what, status: mcp.status }).toEqual({ what, status: 401 });
      }
    });

    it('refuses a token whose unlinked identity asserts an unverified email of an existing account', async () => {
      const victim = await signUp(t, 'ivy@partner.example');
      account('ivy-impostor', 'ivy@partner.example', ['gw-admins'], false);
      const token = await idp.accessToken('ivy-impostor');
      expectError(await http(t.baseUrl, 'GET', '/api/v1/auth/me', { token }), 401, 'UNAUTHORIZED');
      expect(await roleOf(victim.userId)).toEqual(['user']);
    });
  });
});
