import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { Locator } from 'playwright-core';
import { DataSource } from 'typeorm';
import { HeadlessBrowser, launchBrowser } from '../support/browser';
import { identityEnv, PASSWORD, signUp } from '../support/identity';
import { rawHttp } from '../support/raw-http';
import { http, startTestApp, TestApp } from '../support/test-app';
import {
  adminRegisterClient,
  asMetadata,
  AsMetadata,
  authorizationUrl,
  authorizeInBrowser,
  bearerStatus,
  CallbackServer,
  consentButton,
  ClientMetadataHost,
  getManual,
  LoopbackCertificate,
  mcpClient,
  MemoryOAuthProvider,
  nativeClientMetadata,
  OAuthRig,
  pkce,
  Pkce,
  SignInUser,
  startOAuthRig,
  tokenRequest,
  userWithTotp,
} from './oauth-kit';

const LOCKOUT_THRESHOLD = 3;

/**
 * Attacks on the authorization server, each as an attacker would try it: redirect-URI tricks,
 * PKCE downgrade and code replay, a code injected into another client's exchange, cross-site
 * requests against the sign-in and consent forms, open redirects, Client ID Metadata Documents
 * that point inside the network, redirect, or lie about their client_id, mix-up, a token for one
 * MCP endpoint used on another, and the sign-in page's lockout and second factor.
 */
describe('OAuth authorization server under attack (postgres)', () => {
  let rig: OAuthRig;
  let t: TestApp;
  let db: DataSource;
  let tls: LoopbackCertificate;
  let documents: ClientMetadataHost;
  let callback: CallbackServer;
  let browser: HeadlessBrowser;
  let metadata: AsMetadata;
  let adminToken: string;
  let mcpUrl: string;
  let user: SignInUser & { userId: string };
  let clientA: string;
  let clientB: string;

  beforeAll(async () => {
    rig = await startOAuthRig('postgres', { LOCKOUT_THRESHOLD: String(LOCKOUT_THRESHOLD) });
    ({ t, db, tls, documents, callback, browser, metadata, adminToken, mcpUrl } = rig);
    clientA = (await adminRegisterClient(t.baseUrl, adminToken, nativeClientMetadata('Client A', callback.redirectUri))).clientId;
    clientB = (await adminRegisterClient(t.baseUrl, adminToken, nativeClientMetadata('Client B', callback.redirectUri))).clientId;
    user = await userWithTotp(t.baseUrl, 'victim@example.com');
  });
  afterAll(async () => {
    await rig?.close();
  });

  const request = (clientId: string, challenge: Pkce | undefined, extra: Record<string, string | undefined> = {}) =>
    authorizationUrl(metadata, {
      response_type: 'code',
      client_id: clientId,
      redirect_uri: callback.redirectUri,
      scope: 'mcp:tools offline_access',
      resource: mcpUrl,
      state: 'st-' + Math.random().toString(36).slice(2),
      code_challenge: challenge?.challenge,
      code_challenge_method: challenge ? 'S256' : undefined,
      ...extra,
    });

  /** Runs an authorization request in the browser (signing in and consenting as needed). */
  async function inBrowser(url: string, who: SignInUser = user, stopAt?: 'other') {
    const page = await browser.newPage();
    try {
      return await authorizeInBrowser(page, url, callback, who, stopAt ? { stopAt } : {});
    } finally {
      await page.close();
    }
  }

  /** A fresh authorization code for `clientId` (and the PKCE pair it is bound to). */
  async function codeFor(clientId: string, extra: Record<string, string> = {}): Promise<{ code: string; pair: Pkce; redirectUri: string }> {
    const pair = pkce();
    const { callback: back } = await inBrowser(request(clientId, pair, extra));
    const code = back?.searchParams.get('code');
    if (!code) throw new Error(`no code: ${back?.href}`);
    return { code, pair, redirectUri: callback.redirectUri };
  }

  const redeem = (clientId: string, code: string, verifier: string | undefined, extra: Record<string, string> = {}) =>
    tokenRequest(metadata, {
      grant_type: 'authorization_code',
      code,
      code_verifier: verifier,
      client_id: clientId,
      redirect_uri: callback.redirectUri,
      resource: mcpUrl,
      ...extra,
    });

  /** The answer to an authorization request that must not be honoured: never a redirect outside the registered URI, never a code. */
  function expectRefusedWithoutRedirect(res: { status: number; location: string | null; text: string }) {
    expect({ status: res.status, location: res.location }).toEqual({ status: 400, location: null });
    expect(res.text).not.toMatch(/[?&]code=/);
  }

  describe('redirect URIs are matched exactly', () => {
    const registered = () => new URL(callback.redirectUri);
    const variants: Array<[string, () => string]> = [
      ['a prefix of the registered one', () => `${registered().origin}/call`],
      ['the registered one plus a suffix', () => `${registered().origin}/callbackx`],
      ['another case', () => `${registered().origin}/CALLBACK`],
      ['an extra path segment', () => `${registered().origin}/callback/evil`],
      ['a dot-segment escape', () => `${registered().origin}/callback/../evil`],
      ['an added query', () => `${registered().href}?next=https://evil.example`],
      ['a fragment', () => `${registered().href}#evil`],
      ['userinfo before another host', () => `http://127.0.0.1:${registered().port}@evil.example/callback`],
      ['another host', () => `https://evil.example/callback`],
      ['an unregistered loopback path', () => `http://127.0.0.1:${registered().port}/other`],
    ];
    it.each(variants)('refuses %s with an error page, redirecting nowhere', async (_name, variant) => {
      const res = await getManual(request(clientA, pkce(), { redirect_uri: variant() }));
      expectRefusedWithoutRedirect(res);
    });

    it('an unknown client_id with an attacker redirect_uri is not redirected either (no open redirect)', async () => {
      const res = await getManual(request('no-such-client', pkce(), { redirect_uri: 'https://evil.example/cb' }));
      expectRefusedWithoutRedirect(res);
    });

    it('a valid request that fails (prompt=none, nobody signed in): the error goes only to the registered URI, with iss', async () => {
      const res = await getManual(request(clientA, pkce(), { prompt: 'none' }));
      expect(res.status).toBeGreaterThanOrEqual(300);
      expect(res.status).toBeLessThan(400);
      const location = new URL(res.location!, t.baseUrl);
      expect(location.origin + location.pathname).toBe(callback.redirectUri);
      expect(location.searchParams.get('error')).toBe('login_required');
      expect(location.searchParams.get('code')).toBeNull();
      expect(location.searchParams.get('iss')).toBe(metadata.issuer);
    });
  });

  describe('PKCE: S256 only, verifier required, codes once', () => {
    /** An authorization request that must yield no code, whether refused at once or after sign-in. */
    async function expectNoCode(url: string) {
      const { callback: back, visited } = await inBrowser(url, user, 'other');
      if (back) {
        expect(back.searchParams.get('code')).toBeNull();
        expect(back.searchParams.get('error')).toBe('invalid_request');
      } else expect(visited.at(-1)).toBe('other');
    }

    it('refuses code_challenge_method=plain', async () => {
      const pair = pkce();
      await expectNoCode(request(clientA, undefined, { code_challenge: pair.verifier, code_challenge_method: 'plain' }));
    });

    it('refuses a request without code_challenge', async () => {
      await expectNoCode(request(clientA, undefined));
    });

    it('refuses to redeem a code without its verifier, or with another verifier', async () => {
      const first = await codeFor(clientA);
      const missing = await redeem(clientA, first.code, undefined);
      expect(missing.status).toBe(400);
      expect(missing.body.access_token).toBeUndefined();
      const second = await codeFor(clientA);
      const wrong = await redeem(clientA, second.code, pkce().verifier);
      expect({ status: wrong.status, error: wrong.body.error }).toEqual({ status: 400, error: 'invalid_grant' });
      expect(wrong.body.access_token).toBeUndefined();
    });

    it('a replayed code is refused, and the tokens of its first use stop working', async () => {
      const { code, pair } = await codeFor(clientA);
      const first = await redeem(clientA, code, pair.verifier);
      expect(first.status).toBe(200);
      expect(first.headers.get('cache-control')).toMatch(/no-store/);
      expect(await bearerStatus(mcpUrl, first.body.access_token)).not.toBe(401);
      const replay = await redeem(clientA, code, pair.verifier);
      expect({ status: replay.status, error: replay.body.error }).toEqual({ status: 400, error: 'invalid_grant' });
      expect(await bearerStatus(mcpUrl, first.body.access_token)).toBe(401);
    });

    it('a refresh token used twice revokes the grant (rotation with reuse detection)', async () => {
      const { code, pair } = await codeFor(clientA);
      const tokens = (await redeem(clientA, code, pair.verifier)).body;
      expect(tokens.refresh_token).toEqual(expect.any(String));
      const rotated = await tokenRequest(metadata, {
        grant_type: 'refresh_token',
        refresh_token: tokens.refresh_token,
        client_id: clientA,
      });
      expect(rotated.status).toBe(200);
      expect(rotated.body.refresh_token).not.toBe(tokens.refresh_token);
      const reuse = await tokenRequest(metadata, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: clientA });
      expect({ status: reuse.status, error: reuse.body.error }).toEqual({ status: 400, error: 'invalid_grant' });
      // Both holders lose: the rotated tokens are dead too.
      expect(await bearerStatus(mcpUrl, rotated.body.access_token)).toBe(401);
      const next = await tokenRequest(metadata, {
        grant_type: 'refresh_token',
        refresh_token: rotated.body.refresh_token,
        client_id: clientA,
      });
      expect(next.body.error).toBe('invalid_grant');
      const audit = await db.query(`SELECT action FROM audit_logs WHERE user_id = $1 AND action = 'oauth.refresh_reuse'`, [user.userId]);
      expect(audit.length).toBeGreaterThan(0);
    });

    it('a refresh token presented several times at once is honoured once, and the race revokes the grant like a replay', async () => {
      const { code, pair } = await codeFor(clientA);
      const tokens = (await redeem(clientA, code, pair.verifier)).body;
      const before = await db.query(`SELECT count(*)::int AS n FROM audit_logs WHERE user_id = $1 AND action = 'oauth.refresh_reuse'`, [
        user.userId,
      ]);
      // Sent together: each request reads the token before any has committed its consumption.
      const answers = await Promise.all(
        Array.from({ length: 2 }, () =>
          tokenRequest(metadata, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: clientA }),
        ),
      );
      const won = answers.filter((answer) => answer.status === 200);
      expect(won).toHaveLength(1);
      for (const lost of answers.filter((answer) => answer.status !== 200)) {
        expect({ status: lost.status, error: lost.body.error }).toEqual({ status: 400, error: 'invalid_grant' });
      }
      // Whoever won holds nothing usable: the grant is revoked, as for a refresh token replayed later.
      expect(await bearerStatus(mcpUrl, won[0].body.access_token)).toBe(401);
      const next = await tokenRequest(metadata, {
        grant_type: 'refresh_token',
        refresh_token: won[0].body.refresh_token,
        client_id: clientA,
      });
      expect({ status: next.status, error: next.body.error }).toEqual({ status: 400, error: 'invalid_grant' });
      const after = await db.query(`SELECT count(*)::int AS n FROM audit_logs WHERE user_id = $1 AND action = 'oauth.refresh_reuse'`, [
        user.userId,
      ]);
      expect(after[0].n).toBeGreaterThan(before[0].n);
    });
  });

  describe('authorization-code injection across clients', () => {
    it("client B cannot redeem client A's code, with A's verifier or its own", async () => {
      const { code, pair } = await codeFor(clientA);
      const stolen = await redeem(clientB, code, pair.verifier);
      expect({ status: stolen.status, error: stolen.body.error }).toEqual({ status: 400, error: 'invalid_grant' });
      expect(stolen.body.access_token).toBeUndefined();
      const ownVerifier = await redeem(clientB, code, pkce().verifier);
      expect(ownVerifier.status).toBe(400);
      expect(ownVerifier.body.access_token).toBeUndefined();
    });

    it("a code is bound to its redirect_uri: another of the client's URIs cannot redeem it", async () => {
      const { code, pair } = await codeFor(clientA);
      const moved = await redeem(clientA, code, pair.verifier, { redirect_uri: `${callback.redirectUri}x` });
      expect(moved.status).toBe(400);
      expect(moved.body.access_token).toBeUndefined();
    });
  });

  describe('scopes and consent', () => {
    it('a user who denies gets the client access_denied and no code, and no grant is kept', async () => {
      const denying = await userWithTotp(t.baseUrl, 'denies@example.com');
      const fresh = await launchBrowser();
      try {
        const page = await fresh.newPage();
        const { callback: back, visited } = await authorizeInBrowser(page, request(clientB, pkce()), callback, denying, { deny: true });
        expect(visited).toEqual(['sign-in', 'mfa', 'consent', 'callback']);
        expect(back?.searchParams.get('error')).toBe('access_denied');
        expect(back?.searchParams.get('code')).toBeNull();
        expect(back?.searchParams.get('iss')).toBe(metadata.issuer);
        expect(await db.query(`SELECT grant_id FROM oauth_grants WHERE user_id = $1`, [denying.userId])).toEqual([]);
      } finally {
        await fresh.close();
      }
    });
  });

  describe('mix-up defence (RFC 9207) and issuer', () => {
    it('every authorization response names our issuer', async () => {
      const pair = pkce();
      const { callback: back } = await inBrowser(request(clientA, pair));
      expect(back?.searchParams.get('iss')).toBe(metadata.issuer);
      expect(metadata.authorization_response_iss_parameter_supported).toBe(true);
    });

    it('the issuer never follows a Host header', async () => {
      const res = await rawHttp(
        t.baseUrl,
        'GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Host: evil.example\r\nConnection: close\r\n\r\n',
      );
      if (res.status === 200) expect((res.body as { issuer: string }).issuer).toBe(metadata.issuer);
      else expect(res.status).toBeGreaterThanOrEqual(400);
    });

    it('the SDK client refuses a callback whose iss is another issuer, and redeems no code', async () => {
      const provider = new MemoryOAuthProvider(nativeClientMetadata('mix-up victim', callback.redirectUri), {
        clientInformation: { client_id: clientA },
      });
      const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
      const client: Client = mcpClient('modern');
      await client
        .connect(transport)
        .then(() => client.listTools())
        .catch(() => undefined);
      const { callback: back } = await inBrowser(provider.lastAuthorizationUrl.href);
      const forged = new URLSearchParams(back!.searchParams);
      forged.set('iss', 'https://attacker.example');
      await expect(transport.finishAuth(forged)).rejects.toBeInstanceOf(Error);
      expect(provider.tokens()).toBeUndefined();
      // The genuine response still works: the code was never sent to a token endpoint.
      await transport.finishAuth(back!.searchParams);
      expect(provider.tokens()?.access_token).toEqual(expect.any(String));
      await client.close().catch(() => undefined);
    });
  });

  describe('audience: a token for one MCP endpoint does not work on another', () => {
    it('context endpoint tokens and gateway tokens are not interchangeable', async () => {
      const owner = await signUp(t, 'context-owner@example.com');
      const make = async (name: string) => {
        const res = await http(t.baseUrl, 'POST', '/api/v1/contexts', { token: owner.token, body: { name, tools: ['tool_echo'] } });
        expect(res.status).toBe(201);
        return `${t.baseUrl}/api/v1/contexts/${res.body.id}/mcp`;
      };
      const contextA = await make('audience-a');
      const contextB = await make('audience-b');
      const ownerUser: SignInUser = { email: 'context-owner@example.com', password: PASSWORD };
      // Its own browser profile: this user signs in on their own.
      const own = await launchBrowser();
      try {
        const page = await own.newPage();
        const pair = pkce();
        const { callback: back } = await authorizeInBrowser(page, request(clientA, pair, { resource: contextA }), callback, ownerUser);
        const res = await redeem(clientA, back!.searchParams.get('code')!, pair.verifier, { resource: contextA });
        expect(res.status).toBe(200);
        const tokenA = res.body.access_token as string;
        expect(await bearerStatus(contextA, tokenA)).not.toBe(401);
        expect(await bearerStatus(contextB, tokenA)).toBe(401);
        expect(await bearerStatus(mcpUrl, tokenA)).toBe(401);

        // And the gateway's token is refused on the context endpoint.
        const gatewayPair = pkce();
        const gateway = await authorizeInBrowser(page, request(clientA, gatewayPair), callback, ownerUser);
        const gatewayToken = (await redeem(clientA, gateway.callback!.searchParams.get('code')!, gatewayPair.verifier)).body.access_token;
        expect(await bearerStatus(mcpUrl, gatewayToken)).not.toBe(401);
        expect(await bearerStatus(contextA, gatewayToken)).toBe(401);
        // Nor is either a REST credential.
        expect((await http(t.baseUrl, 'GET', '/api/v1/tools', { token: gatewayToken })).status).toBe(401);
        expect((await http(t.baseUrl, 'GET', '/api/v1/tools', { token: tokenA })).status).toBe(401);
      } finally {
        await own.close();
      }
    });

    it('a resource that is not one of our MCP endpoints is refused (invalid_target)', async () => {
      const res = await getManual(request(clientA, pkce(), { resource: 'https://evil.example/mcp' }));
      const location = res.location ? new URL(res.location, t.baseUrl) : undefined;
      if (location && location.origin + location.pathname === callback.redirectUri) {
        expect(location.searchParams.get('error')).toBe('invalid_target');
        expect(location.searchParams.get('code')).toBeNull();
      } else expectRefusedWithoutRedirect(res);
    });
  });

  describe('Client ID Metadata Documents', () => {
    const doc = (clientId: string, extra: Record<string, unknown> = {}) => ({
      client_id: clientId,
      ...nativeClientMetadata('CIMD attacker', callback.redirectUri),
      ...extra,
    });

    it('a document that redirects is refused, and its target never fetched', async () => {
      const target = documents.publish('/cimd/target.json', doc(documents.url('/cimd/target.json')));
      const clientId = documents.redirect('/cimd/redirecting.json', target);
      const res = await getManual(request(clientId, pkce()));
      expectRefusedWithoutRedirect(res);
      expect(documents.hitsOf('/cimd/target.json')).toBe(0);
    });

    it('a document whose client_id is not its own URL is refused', async () => {
      const clientId = documents.publish('/cimd/liar.json', doc(documents.url('/cimd/someone-else.json')));
      const res = await getManual(request(clientId, pkce()));
      expectRefusedWithoutRedirect(res);
      expect(documents.hitsOf('/cimd/liar.json')).toBeGreaterThan(0);
    });

    it('a redirect_uri the document does not list is refused', async () => {
      const clientId = documents.publish('/cimd/honest.json', doc(documents.url('/cimd/honest.json')));
      const res = await getManual(request(clientId, pkce(), { redirect_uri: 'https://evil.example/cb' }));
      expectRefusedWithoutRedirect(res);
    });

    it('documents at private or loopback addresses are never fetched by a server that does not allow them', async () => {
      const strict = await startTestApp('postgres', { env: identityEnv({ OAUTH_CIMD_CA_FILE: tls.certFile }) });
      try {
        const strictMetadata = await asMetadata(strict.baseUrl);
        for (const [path, hostname] of [
          ['/cimd/loopback-ip.json', '127.0.0.1'],
          ['/cimd/loopback-name.json', 'localhost'],
        ] as const) {
          const clientId = documents.url(path, hostname);
          documents.publish(path, doc(clientId));
          const res = await getManual(
            authorizationUrl(strictMetadata, {
              response_type: 'code',
              client_id: clientId,
              redirect_uri: callback.redirectUri,
              scope: 'mcp:tools',
              code_challenge: pkce().challenge,
              code_challenge_method: 'S256',
            }),
          );
          expectRefusedWithoutRedirect(res);
          expect(documents.hitsOf(path)).toBe(0);
        }
      } finally {
        await strict.close();
      }
    });
  });

  describe('cross-site request forgery on the sign-in and consent forms', () => {
    /** The form a control belongs to: its action and fields (hidden ones included; the control's own name and value too). */
    async function formOf(control: Locator): Promise<{ action: string; fields: Record<string, string> }> {
      return control.first().evaluate((element) => {
        type Field = { name: string; value: string };
        const form = (element as unknown as { form: { action: string; elements: ArrayLike<Field> } }).form;
        const fields: Record<string, string> = {};
        for (const field of Array.from(form.elements)) if (field.name) fields[field.name] = field.value;
        const own = element as unknown as Field;
        if (own.name) fields[own.name] = own.value;
        return { action: form.action, fields };
      });
    }
    const csrfField = (fields: Record<string, string>) => Object.keys(fields).find((name) => /csrf|xsrf/i.test(name));

    it('the sign-in form refuses a post without its token, or with a token from another browser', async () => {
      const victim = await launchBrowser();
      const attacker = await launchBrowser();
      try {
        const page = await victim.newPage();
        await authorizeInBrowser(page, request(clientA, pkce()), callback, user, { stopAt: 'sign-in' });
        const form = await formOf(page.locator('input[name="password"]'));
        const field = csrfField(form.fields);
        expect(field).toEqual(expect.any(String));

        const attackerPage = await attacker.newPage();
        await authorizeInBrowser(attackerPage, request(clientA, pkce()), callback, user, { stopAt: 'sign-in' });
        const foreign = await formOf(attackerPage.locator('input[name="password"]'));

        const base: Record<string, string> = { ...form.fields, email: user.email, password: PASSWORD };
        const withoutToken = Object.fromEntries(Object.entries(base).filter(([name]) => name !== field));
        for (const fields of [withoutToken, { ...base, [field!]: foreign.fields[field!] }]) {
          // The victim's browser, with its cookies, posting what an attacker's page would post.
          const res = await page.request.post(form.action, { form: fields, maxRedirects: 0 });
          expect(res.status()).toBeGreaterThanOrEqual(400);
          expect(res.status()).toBeLessThan(500);
        }
        // The victim was not signed in by them: the page still asks for the password.
        await authorizeInBrowser(page, request(clientA, pkce()), callback, user, { stopAt: 'sign-in' });
        expect(await page.locator('input[name="password"]').count()).toBe(1);
      } finally {
        await victim.close();
        await attacker.close();
      }
    });

    it('the consent form refuses a post without its token; no code is issued', async () => {
      const fresh = await launchBrowser();
      try {
        const consenting = await userWithTotp(t.baseUrl, 'consent-csrf@example.com');
        const clientC = (await adminRegisterClient(t.baseUrl, adminToken, nativeClientMetadata('Client C', callback.redirectUri))).clientId;
        const page = await fresh.newPage();
        const { visited } = await authorizeInBrowser(page, request(clientC, pkce()), callback, consenting, { stopAt: 'consent' });
        expect(visited.at(-1)).toBe('consent');
        const form = await formOf(consentButton(page, 'allow'));
        const field = csrfField(form.fields);
        expect(field).toEqual(expect.any(String));
        const withoutToken = Object.fromEntries(Object.entries(form.fields).filter(([name]) => name !== field));
        const before = callback.received.length;
        const res = await page.request.post(form.action, { form: withoutToken, maxRedirects: 0 });
        expect(res.status()).toBeGreaterThanOrEqual(400);
        expect(res.status()).toBeLessThan(500);
        expect(callback.received.slice(before).filter((url) => url.searchParams.get('code'))).toEqual([]);
        const grants = await db.query(`SELECT grant_id FROM oauth_grants WHERE user_id = $1`, [consenting.userId]);
        expect(grants).toEqual([]);
      } finally {
        await fresh.close();
      }
    });
  });

  describe('the sign-in page keeps the rules of POST /auth/login', () => {
    it('wrong passwords on the page count toward the lockout like REST logins', async () => {
      const email = 'lockout-page@example.com';
      const target = await signUp(t, email);
      const fresh = await launchBrowser();
      try {
        const page = await fresh.newPage();
        // One wrong password over REST, the rest on the page: they add up.
        expect((await http(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { email, password: 'Wrong-password-1' } })).status).toBe(401);
        await authorizeInBrowser(page, request(clientA, pkce()), callback, { email }, { stopAt: 'sign-in' });
        for (let i = 1; i < LOCKOUT_THRESHOLD; i++) {
          await page.locator('input[name="email"]').fill(email);
          await page.locator('input[name="password"]').fill('Wrong-password-1');
          await page.locator('form:has(input[name="password"]) [type="submit"]').click();
          await page.waitForLoadState('load');
          expect(await page.locator('input[name="password"]').count()).toBe(1);
        }
        const locked = await http(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { email, password: PASSWORD } });
        expect(locked.status).toBe(401);
        const actions = await db.query(`SELECT action FROM audit_logs WHERE user_id = $1 ORDER BY seq`, [target.userId]);
        expect(actions.map((row: { action: string }) => row.action)).toContain('auth.lockout');
        // And the page refuses the right password too.
        await page.locator('input[name="email"]').fill(email);
        await page.locator('input[name="password"]').fill(PASSWORD);
        await page.locator('form:has(input[name="password"]) [type="submit"]').click();
        await page.waitForLoadState('load');
        expect(await page.locator('input[name="password"]').count()).toBe(1);
      } finally {
        await fresh.close();
      }
    });

    it('asks an enrolled user for the second factor and refuses a wrong code; a user without one goes straight to consent', async () => {
      const fresh = await launchBrowser();
      try {
        const page = await fresh.newPage();
        const enrolled = await userWithTotp(t.baseUrl, 'mfa-page@example.com');
        const { visited } = await authorizeInBrowser(page, request(clientA, pkce()), callback, enrolled, { stopAt: 'mfa' });
        expect(visited).toEqual(['sign-in', 'mfa']);
        const valid = await enrolled.totp.next();
        await page.locator('input[name="code"]').fill(valid === '000000' ? '111111' : '000000');
        await page.locator('form:has(input[name="code"]) [type="submit"]').click();
        await page.waitForLoadState('load');
        expect(await page.locator('input[name="code"]').count()).toBe(1);
        expect(await page.getByRole('button', { name: /^(allow|approve|authori[sz]e)/i }).count()).toBe(0);

        const plain = await launchBrowser();
        try {
          await signUp(t, 'no-mfa-page@example.com');
          const other = await plain.newPage();
          const result = await authorizeInBrowser(
            other,
            request(clientA, pkce()),
            callback,
            { email: 'no-mfa-page@example.com' },
            { stopAt: 'consent' },
          );
          expect(result.visited).toEqual(['sign-in', 'consent']);
        } finally {
          await plain.close();
        }
      } finally {
        await fresh.close();
      }
    });
  });
});
