import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client';
import type { Cookie, Page } from 'playwright-core';
import { DataSource } from 'typeorm';
import {
  adminRegisterClient,
  ERAS,
  authorizeInBrowser,
  grantOf,
  mcpClient,
  MemoryOAuthProvider,
  nativeClientMetadata,
  OAuthRig,
  pageKind,
  startOAuthRig,
} from '../oauth/oauth-kit';
import { HeadlessBrowser, launchBrowser } from '../support/browser';
import { signUp } from '../support/identity';
import { DATABASE_KINDS, TestApp } from '../support/test-app';
import { CorporateIdp, corpIdpEnv } from './corporate-idp';

const KINDS = process.env.IDP_KINDS ? (process.env.IDP_KINDS.split(',') as typeof DATABASE_KINDS) : DATABASE_KINDS;
const CALLBACK_PATH = '/api/v1/auth/oidc/corp/callback';

/**
 * "Sign in with <provider>" on our OAuth sign-in page: an MCP host's user signs in through the
 * corporate IdP (oidc-provider on loopback) instead of a password, in headless Chromium; the IdP's
 * callback finishes the pending authorization's sign-in (linking rules, just-in-time account, role
 * mapping, audit) and continues to consent. And the attacks on that binding: a callback carrying
 * another sign-in's state, a replayed callback, a callback opened in another browser, a start
 * without the page's anti-forgery value.
 */
describe.each(KINDS)('sign in with an identity provider on the OAuth sign-in page (%s)', (kind) => {
  let idp: CorporateIdp;
  let rig: OAuthRig;
  let t: TestApp;
  let db: DataSource;
  const open: Client[] = [];
  const browsers: HeadlessBrowser[] = [];

  beforeAll(async () => {
    idp = await CorporateIdp.start();
    rig = await startOAuthRig(
      kind,
      corpIdpEnv(idp, {
        IDP_CORP_EMAIL_DOMAINS: 'corp.example,partner.example',
        IDP_CORP_TRUSTED_DOMAINS: 'corp.example',
        IDP_CORP_REQUIRE_FOR_DOMAINS: 'corp.example',
      }),
    );
    ({ t, db } = rig);
    await idp.configure([`${t.baseUrl}${CALLBACK_PATH}`]);
  });

  afterAll(async () => {
    for (const client of open) await client.close().catch(() => undefined);
    for (const browser of browsers) await browser.close();
    await rig?.close();
    await idp?.close();
  });

  const person = (sub: string, email: string, groups: string[], verified = true) =>
    idp.accounts.set(sub, { sub, email, email_verified: verified, name: sub, groups });

  /** Another browser (its own profile: no cookie of the rig's browser). */
  const anotherBrowser = async (): Promise<HeadlessBrowser> => {
    const browser = await launchBrowser();
    browsers.push(browser);
    return browser;
  };

  /** A pre-registered client's authorization URL for a fresh interaction (what a host would open). */
  const authorizationUrlOfNewClient = async (name: string): Promise<string> => {
    const metadata = nativeClientMetadata(name, rig.callback.redirectUri);
    const { clientId } = await adminRegisterClient(t.baseUrl, rig.adminToken, metadata);
    const provider = new MemoryOAuthProvider(metadata, { clientInformation: { client_id: clientId } });
    await expectUnauthorized(provider, 'modern');
    return provider.lastAuthorizationUrl.href;
  };

  /** The SDK client meets a bare 401 and asks to send the user to our authorization endpoint. */
  const expectUnauthorized = async (provider: MemoryOAuthProvider, era: (typeof ERAS)[number]) => {
    const client = mcpClient(era);
    const failure = await client
      .connect(new StreamableHTTPClientTransport(new URL(rig.mcpUrl), { authProvider: provider }))
      .then(() => client.listTools())
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    await client.close().catch(() => undefined);
    expect(failure).toBeInstanceOf(UnauthorizedError);
  };

  /** On our sign-in page: "Sign in with Corp SSO"; then the IdP's own login (and consent) pages. */
  const idpSignIn = async (page: Page, login: string, atIdp?: () => Promise<void>) => {
    await page.getByRole('button', { name: 'Sign in with Corp SSO' }).click();
    await page.waitForURL((url) => url.href.startsWith(idp.issuer));
    await atIdp?.();
    const loginPage = page.url();
    await page.fill('input[name="login"]', login);
    await page.fill('input[name="password"]', 'any password the dev IdP accepts');
    await page.click('button[type="submit"]');
    await page.waitForURL((url) => url.href !== loginPage);
    if (page.url().startsWith(idp.issuer)) await page.click('button[type="submit"]');
  };

  /** Signs in through the IdP until the browser is back on our pages (kit's `signIn` option). */
  const throughIdp =
    (login: string, atIdp?: () => Promise<void>) =>
    async (page: Page): Promise<void> => {
      await idpSignIn(page, login, atIdp);
      await page.waitForURL((url) => !url.href.startsWith(idp.issuer));
      await page.waitForLoadState('load');
    };

  /**
   * Opens `url` in `browser`, chooses the IdP and signs in there as `login`, but the IdP's redirect
   * to our callback never reaches us: the browser's last form post to the IdP is answered on its
   * behalf (Playwright routes no redirect), following the IdP's redirects until the one to our
   * callback, which is kept. The callback URL (code and state) and the browser's sealed state cookie.
   */
  const stopAtCallback = async (browser: HeadlessBrowser, url: string, login: string) => {
    const page = await browser.newPage();
    let arrived!: (value: string) => void;
    const captured = new Promise<string>((resolve) => (arrived = resolve));
    await page.route(
      (target) => target.origin === idp.issuer && target.pathname.startsWith('/interaction/'),
      async (route) => {
        if (route.request().method() !== 'POST') return route.continue();
        let response = await route.fetch({ maxRedirects: 0 });
        let location = response.headers()['location'];
        while (location) {
          const next = new URL(location, idp.issuer);
          if (next.pathname === CALLBACK_PATH) {
            arrived(next.href);
            return route.abort();
          }
          if (next.origin !== idp.issuer || next.pathname.startsWith('/interaction/')) break;
          response = await page.request.get(next.href, { maxRedirects: 0 });
          location = response.headers()['location'];
        }
        return location ? route.fulfill({ status: 303, headers: { location } }) : route.fulfill({ response });
      },
    );
    await page.goto(url);
    let stateCookie: Cookie | undefined;
    await idpSignIn(page, login, async () => {
      stateCookie = await stateCookieOf(browser);
    }).catch(() => undefined);
    const callbackUrl = await captured;
    await page.close();
    return { callbackUrl, stateCookie };
  };

  const stateCookieOf = async (browser: HeadlessBrowser): Promise<Cookie | undefined> =>
    (await browser.context.cookies(`${t.baseUrl}${CALLBACK_PATH}`)).find((cookie) => cookie.name === 'smcp_oidc_corp');

  const userByEmail = async (email: string): Promise<{ id: string; roles: string[] } | undefined> =>
    (await db.query(`SELECT id, roles FROM users WHERE email = $1`, [email]))[0];
  const loginsOf = async (userId: string): Promise<Array<Record<string, unknown>>> =>
    (await db.query(`SELECT details FROM audit_logs WHERE action = 'auth.login' AND user_id = $1 ORDER BY timestamp`, [userId])).map(
      (row: { details: Record<string, unknown> }) => row.details,
    );

  it.each(ERAS)(
    'an SDK v2 client signs in from a bare 401 through the IdP (%s era): account created with mapped roles, consent, tools',
    async (era) => {
      const email = `ida-${era}-${kind}@corp.example`;
      person(`ida-${era}`, email, ['gw-developers']);
      const documentPath = `/clients/idp-${era}/client.json`;
      const clientId = rig.documents.url(documentPath);
      const clientMetadata = nativeClientMetadata(`IdP sign-in client (${era})`, rig.callback.redirectUri);
      rig.documents.publish(documentPath, { client_id: clientId, ...clientMetadata });
      const provider = new MemoryOAuthProvider(clientMetadata, { clientMetadataUrl: clientId });
      await expectUnauthorized(provider, era);

      await rig.browser.context.clearCookies();
      const page = await rig.browser.newPage();
      const shown: string[] = [];
      const { callback, visited } = await authorizeInBrowser(
        page,
        provider.lastAuthorizationUrl.href,
        rig.callback,
        { email },
        {
          signIn: throughIdp(`ida-${era}`),
          inspect: async (kind, current) => {
            if (kind === 'sign-in') shown.push(...(await current.getByRole('button').allInnerTexts()));
          },
        },
      );
      await page.close();
      // Our sign-in page offered the IdP; after it, our consent page; then the client's redirect URI.
      expect(shown).toEqual(expect.arrayContaining(['Sign in', 'Sign in with Corp SSO']));
      expect(visited).toEqual(['sign-in', 'consent', 'callback']);
      expect(callback?.searchParams.get('iss')).toBe(rig.metadata.issuer);
      await new StreamableHTTPClientTransport(new URL(rig.mcpUrl), { authProvider: provider }).finishAuth(callback!.searchParams);
      // Just in time, with the role its groups map to; the sign-in audited as the sign-in page's, through the IdP.
      const user = await userByEmail(email);
      expect(user?.roles).toEqual(['developer']);
      expect(await loginsOf(user!.id)).toEqual([{ method: 'oidc', provider: 'corp', created: true, linked: false, via: 'oauth_sign_in' }]);
      const links = await db.query(`SELECT issuer, subject FROM identity_links WHERE user_id = $1`, [user!.id]);
      expect(links).toEqual([{ issuer: idp.issuer, subject: `ida-${era}` }]);
      // No REST session was opened: the only session is the grant's.
      const grant = await grantOf(db, user!.id, clientId);
      const sessions = await db.query(`SELECT id FROM sessions WHERE user_id = $1`, [user!.id]);
      expect(sessions.map((row: { id: string }) => row.id)).toEqual([grant.sessionId]);

      const client = mcpClient(era);
      open.push(client);
      await client.connect(new StreamableHTTPClientTransport(new URL(rig.mcpUrl), { authProvider: provider }));
      expect((await client.listTools()).tools.map((tool) => tool.name)).toEqual(expect.arrayContaining(['tool_echo']));
      const result = await client.callTool({ name: 'tool_echo', arguments: { message: `via Corp SSO (${era})` } });
      expect(result.structuredContent).toEqual({ message: `via Corp SSO (${era})` });
    },
  );

  it('applies the linking rules: an unverified email of an existing account is refused on an error page, and audited', async () => {
    const victim = await signUp(t, 'victim@partner.example');
    person('mallory-page', 'victim@partner.example', [], false);
    await rig.browser.context.clearCookies();
    const page = await rig.browser.newPage();
    const refused = page.waitForResponse((response) => new URL(response.url()).pathname === CALLBACK_PATH);
    await page.goto(await authorizationUrlOfNewClient('Linking rules client'));
    await throughIdp('mallory-page')(page);
    const response = await refused;
    expect(response.status()).toBe(409);
    expect(response.headers()['content-type']).toBe('text/html; charset=utf-8');
    expect(await page.getByRole('heading', { level: 1 }).innerText()).toBe('Sign-in failed');
    expect(await page.getByRole('alert').innerText()).toBe(
      'Corp SSO does not assert this email verified: it cannot be linked to an account or create one',
    );
    await page.close();
    const refusals = await db.query(`SELECT details FROM audit_logs WHERE action = 'auth.idp.refused' ORDER BY timestamp DESC LIMIT 1`);
    expect(refusals[0].details).toMatchObject({ provider: 'corp', subject: 'mallory-page', email: 'victim@partner.example' });
    expect(await loginsOf(victim.userId)).toHaveLength(1);
  });

  describe('attacks on the binding of the IdP sign-in to the interaction and the browser', () => {
    it("refuses a callback carrying another sign-in's state (the attacker's code in the victim's browser)", async () => {
      person('eve', 'eve@corp.example', ['gw-admins']);
      const victim = await anotherBrowser();
      // The victim starts her own IdP sign-in: her browser holds the state of her interaction.
      const victimPage = await victim.newPage();
      await victimPage.goto(await authorizationUrlOfNewClient('Victim client'));
      await victimPage.getByRole('button', { name: 'Sign in with Corp SSO' }).click();
      await victimPage.waitForURL((url) => url.href.startsWith(idp.issuer));
      // The attacker signs in as himself for his own interaction and keeps the callback URL.
      const attacker = await anotherBrowser();
      const stolen = await stopAtCallback(attacker, await authorizationUrlOfNewClient('Attacker client'), 'eve');
      expect(new URL(stolen.callbackUrl).searchParams.get('state')).toEqual(expect.any(String));
      // Injected into the victim's browser: her state does not match, nothing is finished.
      const response = await victimPage.goto(stolen.callbackUrl);
      expect(response?.status()).toBe(401);
      expect(response?.headers()['content-type']).toBe('text/html; charset=utf-8');
      expect(await victimPage.getByRole('heading', { level: 1 }).innerText()).toBe('Sign-in failed');
      expect(await userByEmail('eve@corp.example')).toBeUndefined();
      await victimPage.close();
    });

    it('refuses a replayed callback: without the state cookie (used once), and with a copy of it', async () => {
      person('rita', 'rita@corp.example', []);
      const browser = await anotherBrowser();
      const url = await authorizationUrlOfNewClient('Replay client');
      const page = await browser.newPage();
      let callbackUrl = '';
      page.on('request', (request) => {
        if (new URL(request.url()).pathname === CALLBACK_PATH) callbackUrl = request.url();
      });
      let stateCookie: Cookie | undefined;
      const { visited } = await authorizeInBrowser(
        page,
        url,
        rig.callback,
        { email: 'rita@corp.example' },
        {
          signIn: throughIdp('rita', async () => {
            stateCookie = await stateCookieOf(browser);
          }),
        },
      );
      expect(visited).toEqual(['sign-in', 'consent', 'callback']);
      const rita = await userByEmail('rita@corp.example');
      expect(await loginsOf(rita!.id)).toHaveLength(1);

      const replayed = await page.goto(callbackUrl);
      expect(replayed?.status()).toBe(401);
      // The sealed state copied back in: the interaction is finished (and the IdP's code spent).
      expect(stateCookie?.value).toEqual(expect.any(String));
      await browser.context.addCookies([{ name: stateCookie!.name, value: stateCookie!.value, url: `${t.baseUrl}${CALLBACK_PATH}` }]);
      const withCookie = await page.goto(callbackUrl);
      expect(withCookie?.status()).toBe(401);
      expect(withCookie?.headers()['content-type']).toBe('text/html; charset=utf-8');
      expect(await loginsOf(rita!.id)).toHaveLength(1);
      await page.close();
    });

    it("refuses a callback opened in another browser (the victim's code without her state cookie)", async () => {
      person('otto', 'otto@corp.example', ['gw-admins']);
      const owner = await anotherBrowser();
      const { callbackUrl, stateCookie } = await stopAtCallback(owner, await authorizationUrlOfNewClient('Owner client'), 'otto');
      expect(stateCookie?.httpOnly).toBe(true);
      const other = await anotherBrowser();
      const page = await other.newPage();
      const response = await page.goto(callbackUrl);
      expect(response?.status()).toBe(401);
      expect(JSON.parse(await page.locator('body').innerText()).error).toBe('IDP_SIGN_IN_FAILED');
      expect(await userByEmail('otto@corp.example')).toBeUndefined();
      await page.close();
      // The same callback in the browser that started it goes on to consent: only the binding refused it.
      const ownerPage = await owner.newPage();
      await ownerPage.goto(callbackUrl);
      expect(await pageKind(ownerPage, rig.callback.redirectUri)).toBe('consent');
      expect(await userByEmail('otto@corp.example')).toEqual({ id: expect.any(String), roles: ['admin'] });
      await ownerPage.close();
    });

    it("refuses to start an IdP sign-in without the page's anti-forgery value, or for an unknown provider", async () => {
      const browser = await anotherBrowser();
      const page = await browser.newPage();
      await page.goto(await authorizationUrlOfNewClient('CSRF client'));
      const action = await page.locator('form:has(button[name="provider"])').getAttribute('action');
      const csrf = await page.locator('form:has(button[name="provider"]) input[name="csrf"]').getAttribute('value');
      const target = new URL(action!, t.baseUrl).href;
      const forged = await page.request.post(target, { form: { provider: 'corp' }, maxRedirects: 0 });
      expect(forged.status()).toBe(403);
      const wrong = await page.request.post(target, { form: { provider: 'corp', csrf: `${csrf}x` }, maxRedirects: 0 });
      expect(wrong.status()).toBe(403);
      const unknown = await page.request.post(target, { form: { provider: 'nope', csrf: csrf! }, maxRedirects: 0 });
      expect(unknown.status()).toBe(404);
      const started = await page.request.post(target, { form: { provider: 'corp', csrf: csrf! }, maxRedirects: 0 });
      expect(started.status()).toBe(303);
      expect(started.headers()['location'].startsWith(`${idp.issuer}/`)).toBe(true);
      await page.close();
    });
  });
});
