import type { Page } from 'playwright-core';
import { DataSource } from 'typeorm';
import { HeadlessBrowser, launchBrowser } from '../support/browser';
import { http, TestApp } from '../support/test-app';
import { Caller, execute, PASSWORD, signUp } from '../tools/tools-test-kit';
import { connectInBrowser, startUserOAuthGateway, UpstreamAuthorizationServer, UserOAuthGateway } from './upstream-as';
import { ReferenceUpstream, waitFor } from './upstream-test-kit';

const LISTING_TOKEN = 'gateway-listing-token-page-01';

/** The upstreams on the page: name, mode and status, in order. */
async function listed(page: Page): Promise<string[][]> {
  return page.$$eval('main li section', (sections) =>
    sections.map((section) => {
      const dds = [...section.querySelectorAll('dd')].map((dd) => dd.textContent ?? '');
      return [section.querySelector('h2')?.textContent ?? '', dds[0], dds[1]];
    }),
  );
}

async function credentialRows(db: DataSource, userId: string, upstream = 'docs'): Promise<number> {
  const [row] = await db.query(`SELECT count(*)::int AS n FROM upstream_credentials WHERE user_id = $1 AND upstream = $2`, [
    userId,
    upstream,
  ]);
  return row.n;
}

/**
 * Issue 17, "users see and revoke their connections (a page)": GET /connect on the gateway,
 * server-rendered, driven in headless Chromium signed in on the gateway's own sign-in page. The
 * upstream is the user-oauth whoami server behind oidc-provider on loopback (upstream-as.ts).
 */
describe('Connections page (GET /connect)', () => {
  let t: TestApp;
  let as: UpstreamAuthorizationServer;
  let upstream: ReferenceUpstream;
  let db: DataSource;
  let issuer: string;
  let alice: Caller;
  let bob: Caller;
  let browser: HeadlessBrowser;
  let page: Page;
  const aliceEmail = 'alice.page@example.com';
  const bobEmail = 'bob.page@example.com';

  let gateway: UserOAuthGateway | undefined;

  beforeAll(async () => {
    gateway = await startUserOAuthGateway(LISTING_TOKEN, (url) => [
      // A user-secret upstream (its tools are not called here): the page's write-only token form.
      {
        name: 'notes',
        transport: 'http',
        url,
        headers: { Authorization: { fromEnv: 'UPSTREAM_DOCS_LISTING', prefix: 'Bearer ' } },
        category: 'system',
        permissions: ['tools:execute'],
        auth: { mode: 'user-secret' },
      },
    ]);
    ({ t, as, upstream, db, issuer } = gateway);
    alice = await signUp(t, aliceEmail);
    bob = await signUp(t, bobEmail);
    await waitFor("the upstream's tool in the catalogue", async () => {
      const res = await execute(t, alice, 'docs.whoami', { parameters: {} });
      return res.body?.error?.code === 'UPSTREAM_CREDENTIAL_REQUIRED';
    });
    // Bob connects through the link a call names: his connection must not show on Alice's page.
    const link = /open (\S+) in a browser/.exec((await execute(t, bob, 'docs.whoami', { parameters: {} })).body.error.message)?.[1];
    expect((await connectInBrowser({ link: String(link), gateway: issuer, as, email: bobEmail, upstreamLogin: 'bob-at-docs' })).title).toBe(
      'Connected',
    );
    browser = await launchBrowser();
    page = await browser.newPage();
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('sends a browser not signed in to the sign-in page (no secret in the URL), and back to the page after it', async () => {
    const res = await fetch(`${issuer}/connect`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    const location = new URL(String(res.headers.get('location')));
    expect(location.origin + location.pathname).toBe(`${issuer}/oauth/authorize`);
    expect(location.searchParams.get('client_id')).toBe('secure-mcp-gateway-pages');
    expect(location.searchParams.get('redirect_uri')).toBe(`${issuer}/connect/signed-in`);

    await page.goto(`${issuer}/connect`);
    await page.waitForURL((at) => at.href.startsWith(`${issuer}/oauth/interaction/`));
    await page.fill('input[name="email"]', aliceEmail);
    await page.fill('input[name="password"]', PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForURL(`${issuer}/connect`);
    expect(await page.textContent('h1')).toBe('Your connections');
    expect(await page.$$('script')).toHaveLength(0);
  });

  it("shows the user's own connections only: Bob is connected, Alice is not", async () => {
    expect(await listed(page)).toEqual([
      ['docs', 'user-oauth', 'Not connected'],
      ['notes', 'user-secret', 'Not connected'],
    ]);
    expect(await page.$$('button:has-text("Disconnect")')).toHaveLength(0);
    const bobRows = await credentialRows(db, bob.userId);
    expect(bobRows).toBe(1);
  });

  it("Connect starts the connect flow; back on the page, the connection shows and the user's call acts as them", async () => {
    await page.click('button:has-text("Connect")');
    await page.waitForURL((at) => at.href.startsWith(as.issuer));
    await page.fill('input[name="login"]', 'alice-at-docs');
    await page.fill('input[name="password"]', 'any password the dev interaction accepts');
    for (let step = 0; step < 3 && page.url().startsWith(as.issuer); step += 1) {
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    }
    await page.waitForURL((at) => at.href.startsWith(`${issuer}/connect/callback`));
    expect(await page.textContent('h1')).toBe('Connected');
    expect(await page.getAttribute('a:has-text("Your connections")', 'href')).toBe('/connect');
    const call = await execute(t, alice, 'docs.whoami', { parameters: {} });
    expect(call.body.status).toBe('completed');
    await page.goto(`${issuer}/connect`);
    expect(await listed(page)).toEqual([
      ['docs', 'user-oauth', 'Connected'],
      ['notes', 'user-secret', 'Not connected'],
    ]);
    const times = await page.$$eval('main li:first-child dt', (dts) => dts.map((dt) => dt.textContent));
    expect(times).toEqual(['Mode', 'Status', 'Connected at', 'Updated at', 'Last used at']);
    expect(await page.$$('button[aria-label="Connect docs"]')).toHaveLength(0);
  });

  it('shows a broken connection (refresh refused upstream) as such, with Connect and Disconnect', async () => {
    await db.query(`UPDATE upstream_credentials SET status = 'broken' WHERE user_id = $1 AND upstream = 'docs'`, [alice.userId]);
    try {
      await page.reload();
      expect((await listed(page))[0]).toEqual(['docs', 'user-oauth', 'Broken: connect again']);
      expect(await page.$$('button[aria-label="Connect docs"]')).toHaveLength(1);
      expect(await page.$$('button[aria-label="Disconnect docs"]')).toHaveLength(1);
    } finally {
      await db.query(`UPDATE upstream_credentials SET status = 'active' WHERE user_id = $1 AND upstream = 'docs'`, [alice.userId]);
      await page.reload();
    }
  });

  it("stores a user-secret upstream's token write-only: sealed in the database, never shown on the page", async () => {
    const secret = 'pat-alice-notes-0123456789';
    await page.getByLabel('Personal token for notes').fill(secret);
    await Promise.all([page.waitForURL(`${issuer}/connect?done=stored`), page.click('button:has-text("Store token")')]);
    expect((await listed(page))[1]).toEqual(['notes', 'user-secret', 'Connected']);
    expect((await page.content()).includes(secret)).toBe(false);
    expect(await page.inputValue('input[name="secret"]')).toBe('');
    const [row] = await db.query(`SELECT secret_ciphertext FROM upstream_credentials WHERE user_id = $1 AND upstream = 'notes'`, [
      alice.userId,
    ]);
    expect(String(row.secret_ciphertext).split('.')[0]).toBe('uc1');
    expect(String(row.secret_ciphertext).includes(secret)).toBe(false);
    const [stored] = await db.query(`SELECT details FROM audit_logs WHERE action = 'upstream.credential.stored' AND user_id = $1`, [
      alice.userId,
    ]);
    expect(stored.details).toEqual({ upstream: 'notes', mode: 'user-secret', replaced: false, version: 1 });
  });

  it('refuses a disconnect without, or with a wrong, anti-forgery token, and changes nothing', async () => {
    const post = (form: Record<string, string>) => page.request.post(`${issuer}/connect/disconnect`, { form, maxRedirects: 0 });
    expect((await post({ upstream: 'docs' })).status()).toBe(403);
    const csrf = String(await page.getAttribute('form[action="/connect/disconnect"] input[name="csrf"]', 'value'));
    const wrong = csrf.slice(0, -2) + (csrf.endsWith('AA') ? 'BB' : 'AA');
    expect((await post({ upstream: 'docs', csrf: wrong })).status()).toBe(403);
    // The right token without this browser's cookie (another site's request has neither) is refused too.
    const bare = await fetch(`${issuer}/connect/disconnect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ upstream: 'docs', csrf }).toString(),
      redirect: 'manual',
    });
    expect(bare.status).toBe(403);
    expect(await credentialRows(db, alice.userId)).toBe(1);
    const [deleted] = await db.query(
      `SELECT count(*)::int AS n FROM audit_logs WHERE action = 'upstream.credential.deleted' AND user_id = $1`,
      [alice.userId],
    );
    expect(deleted.n).toBe(0);
  });

  it('Disconnect deletes the connection with its audit record; the next call asks to connect again; Bob keeps his', async () => {
    await Promise.all([page.waitForURL(`${issuer}/connect?done=disconnected`), page.click('button[aria-label="Disconnect docs"]')]);
    expect(await page.textContent('[role="status"]')).toBe('Disconnected.');
    expect(await listed(page)).toEqual([
      ['docs', 'user-oauth', 'Not connected'],
      ['notes', 'user-secret', 'Connected'],
    ]);
    expect(await credentialRows(db, alice.userId, 'notes')).toBe(1);
    expect(await credentialRows(db, alice.userId)).toBe(0);
    expect(await credentialRows(db, bob.userId)).toBe(1);
    const audit = await db.query(`SELECT details, result FROM audit_logs WHERE action = 'upstream.credential.deleted' AND user_id = $1`, [
      alice.userId,
    ]);
    expect(audit).toEqual([{ details: { upstream: 'docs', mode: 'user-oauth', version: expect.any(Number) }, result: 'success' }]);
    const call = await execute(t, alice, 'docs.whoami', { parameters: {} });
    expect(call.body.error?.code).toBe('UPSTREAM_CREDENTIAL_REQUIRED');
    expect((await execute(t, bob, 'docs.whoami', { parameters: {} })).body.status).toBe('completed');
  });

  it('a second disconnect of the same upstream is a 404 page, not a change', async () => {
    const csrf = String(await page.getAttribute('form[action="/connect/start"] input[name="csrf"]', 'value'));
    const res = await page.request.post(`${issuer}/connect/disconnect`, { form: { upstream: 'docs', csrf }, maxRedirects: 0 });
    expect(res.status()).toBe(404);
    expect(await credentialRows(db, bob.userId)).toBe(1);
  });
});
