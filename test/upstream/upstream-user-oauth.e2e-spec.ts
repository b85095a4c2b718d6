import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallToolResult, Client, StreamableHTTPClientTransport, UrlElicitationRequiredError } from '@modelcontextprotocol/client';
import { decodeJwt } from 'jose';
import { DataSource } from 'typeorm';
import { launchBrowser } from '../support/browser';
import { http, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, Caller, execute, login, PASSWORD, signUp, toolsEnv } from '../tools/tools-test-kit';
import { connectInBrowser, UPSTREAM_CLIENT_ID, startUserOAuthGateway, UpstreamAuthorizationServer, UserOAuthGateway } from './upstream-as';
import { ReferenceUpstream, waitFor, writeUpstreamsFile } from './upstream-test-kit';

/** The gateway's own credential: for the catalogue connection (tools/list) only, never on a call. */
const LISTING_TOKEN = 'gateway-listing-token-oauth-01';

/** Every bearer token the upstream saw on a tools/call, in order. */
async function seenByUpstream(upstream: ReferenceUpstream): Promise<Array<string | null>> {
  return ((await (await fetch(upstream.url.replace(/\/mcp$/, '/seen'))).json()) as { seen: Array<string | null> }).seen;
}

function tokenOf(result: CallToolResult): string {
  return String((result.structuredContent as { token?: unknown } | undefined)?.token);
}

/** An SDK v2 agent of `caller` that declared URL-mode elicitation. */
async function urlAgent(t: TestApp, caller: Caller): Promise<Client> {
  const client = new Client({ name: 'url-elicitation-agent', version: '1.0.0' }, { capabilities: { elicitation: { url: {} } } });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${t.baseUrl}/api/v1/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${caller.token}` } },
    }),
  );
  return client;
}

/** The URL elicitation a call yields (the error the SDK turns it into). */
async function elicitationOf(client: Client, tool: string): Promise<{ url: string; mode: string }> {
  const error = await client.callTool({ name: tool, arguments: {} }).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(UrlElicitationRequiredError);
  const [elicitation] = (error as UrlElicitationRequiredError).elicitations;
  return { url: String(elicitation.url), mode: elicitation.mode };
}

/**
 * Issue 17, `auth: user-oauth`: the gateway is each user's OAuth client of an upstream MCP server
 * (official v2 server SDK, fixtures/whoami-upstream.cjs) whose authorization server is
 * oidc-provider on loopback (upstream-as.ts), found through the upstream's RFC 9728 metadata. The
 * upstream accepts only JWT access tokens of that server bound to its own URL (RFC 8707). Users
 * connect in headless Chromium through the gateway's connect link, signed in to the gateway on
 * its own OAuth sign-in page.
 */
describe('Per-user upstream credentials (auth: user-oauth)', () => {
  let t: TestApp;
  let as: UpstreamAuthorizationServer;
  let upstream: ReferenceUpstream;
  let db: DataSource;
  let issuer: string;
  let alice: Caller;
  let bob: Caller;
  const aliceEmail = 'alice.oauth@example.com';
  const bobEmail = 'bob.oauth@example.com';

  let gateway: UserOAuthGateway | undefined;

  beforeAll(async () => {
    gateway = await startUserOAuthGateway(LISTING_TOKEN);
    ({ t, as, upstream, db, issuer } = gateway);
    alice = await signUp(t, aliceEmail);
    bob = await signUp(t, bobEmail);
    await waitFor("the upstream's tool in the catalogue", async () => {
      const res = await execute(t, alice, 'docs.whoami', { parameters: {} });
      return res.body?.error?.code === 'UPSTREAM_CREDENTIAL_REQUIRED';
    });
  });

  afterAll(async () => {
    await gateway?.close();
  });

  describe('connecting', () => {
    it('a first call yields a URL elicitation to a one-time gateway connect link; after connecting in the browser the retry acts as the user', async () => {
      const agent = await urlAgent(t, alice);
      try {
        const elicitation = await elicitationOf(agent, 'docs.whoami');
        expect(elicitation.mode).toBe('url');
        expect(elicitation.url).toMatch(new RegExp(`^${issuer}/connect/upstream/[A-Za-z0-9_-]{32}$`));
        const done = await connectInBrowser({
          link: elicitation.url,
          gateway: issuer,
          as,
          email: aliceEmail,
          upstreamLogin: 'alice-at-docs',
        });
        expect(done).toMatchObject({ title: 'Connected', text: expect.stringContaining('Your account at docs is connected') });
        const claims = decodeJwt(tokenOf((await agent.callTool({ name: 'docs.whoami', arguments: {} })) as CallToolResult));
        expect({ sub: claims.sub, aud: claims.aud, iss: claims.iss }).toEqual({ sub: 'alice-at-docs', aud: upstream.url, iss: as.issuer });
        // The link was for one use only.
        const again = await fetch(elicitation.url, { redirect: 'manual' });
        expect(again.status).toBe(400);
      } finally {
        await agent.close();
      }
    });

    it('an agent without URL elicitation gets UPSTREAM_CREDENTIAL_REQUIRED naming the link, which works the same', async () => {
      const res = await execute(t, bob, 'docs.whoami', { parameters: {} });
      expect(res.body.status).toBe('failed');
      expect(res.body.error.code).toBe('UPSTREAM_CREDENTIAL_REQUIRED');
      const match = /open (\S+) in a browser signed in to this gateway, then try again$/.exec(res.body.error.message);
      expect(match?.[1]).toMatch(new RegExp(`^${issuer}/connect/upstream/`));
      expect(
        (await connectInBrowser({ link: String(match?.[1]), gateway: issuer, as, email: bobEmail, upstreamLogin: 'bob-at-docs' })).title,
      ).toBe('Connected');
      const retry = await execute(t, bob, 'docs.whoami', { parameters: {} });
      expect(decodeJwt(String(retry.body.result.structuredContent.token)).sub).toBe('bob-at-docs');
    });

    it('refuses a connect link opened in a browser signed in as another gateway user', async () => {
      const res = await execute(t, bob, 'docs.whoami', { parameters: {} });
      expect(res.body.status).toBe('completed');
      const carol = await signUp(t, 'carol.oauth@example.com');
      const link = /open (\S+) in a browser/.exec((await execute(t, carol, 'docs.whoami', { parameters: {} })).body.error.message)?.[1];
      const browser = await launchBrowser();
      try {
        const page = await browser.newPage();
        await page.goto(String(link));
        await page.fill('input[name="email"]', bobEmail);
        await page.fill('input[name="password"]', PASSWORD);
        const [response] = await Promise.all([
          page.waitForResponse((r) => r.url().startsWith(`${issuer}/connect/upstream/`) && r.status() !== 303),
          page.click('button[type="submit"]'),
        ]);
        expect(response.status()).toBe(403);
        expect(page.url().startsWith(as.issuer)).toBe(false);
      } finally {
        await browser.close();
      }
    });
  });

  describe('connected users', () => {
    it("concurrent calls of two users each reach the upstream with that user's own token only", async () => {
      const before = (await seenByUpstream(upstream)).length;
      const calls: Array<Promise<[string, string]>> = [];
      for (let i = 0; i < 5; i += 1) {
        for (const [who, caller] of [
          ['alice-at-docs', alice],
          ['bob-at-docs', bob],
        ] as const) {
          calls.push(
            execute(t, caller, 'docs.whoami', { parameters: {} }).then((r) => [who, String(r.body.result?.structuredContent?.token)]),
          );
        }
      }
      for (const [who, token] of await Promise.all(calls)) expect(decodeJwt(token).sub).toBe(who);
      const seen = (await seenByUpstream(upstream)).slice(before);
      expect(seen).toHaveLength(10);
      expect(seen.filter((token) => decodeJwt(String(token)).sub === 'alice-at-docs')).toHaveLength(5);
      expect(seen.filter((token) => decodeJwt(String(token)).sub === 'bob-at-docs')).toHaveLength(5);
      expect(seen).not.toContain(LISTING_TOKEN);
      expect(seen).not.toContain(alice.token);
      expect(seen).not.toContain(bob.token);
    });

    it('keeps no plaintext token in the database, and audits the connection', async () => {
      const tokens = new Set((await seenByUpstream(upstream)).map(String));
      const rows: Array<Record<string, unknown>> = await db.query(`SELECT * FROM upstream_credentials WHERE mode = 'user-oauth'`);
      expect(rows.map((row) => row.user_id).sort()).toEqual([alice.userId, bob.userId].sort());
      const audit: Array<Record<string, unknown>> = await db.query(`SELECT * FROM audit_logs WHERE action LIKE 'upstream.credential.%'`);
      for (const row of [...rows, ...audit]) {
        for (const value of Object.values(row)) {
          const text = typeof value === 'string' ? value : JSON.stringify(value ?? null);
          for (const token of tokens) expect(text.includes(token)).toBe(false);
          // No JWT of any kind (the access tokens are JWTs; a refresh token would not be either).
          expect(/eyJ[A-Za-z0-9_-]{10,}\./.test(text)).toBe(false);
        }
      }
      for (const row of rows) expect(String(row.secret_ciphertext).split('.')[0]).toBe('uc1');
      const [connected] = await db.query(`SELECT details FROM audit_logs WHERE action = 'upstream.credential.connected' AND user_id = $1`, [
        alice.userId,
      ]);
      expect(connected.details).toMatchObject({ upstream: 'docs', mode: 'user-oauth', refreshable: true });
    });

    it('an expired token is refreshed once for many concurrent calls, and each call succeeds', async () => {
      const before = as.refreshRequests;
      await db.query(`UPDATE upstream_credentials SET expires_at = now() - interval '1 minute' WHERE user_id = $1`, [alice.userId]);
      const [{ version }] = await db.query(`SELECT version FROM upstream_credentials WHERE user_id = $1`, [alice.userId]);
      const results = await Promise.all(Array.from({ length: 10 }, () => execute(t, alice, 'docs.whoami', { parameters: {} })));
      for (const res of results) expect(decodeJwt(String(res.body.result?.structuredContent?.token)).sub).toBe('alice-at-docs');
      expect(as.refreshRequests - before).toBe(1);
      const [after] = await db.query(`SELECT version, expires_at FROM upstream_credentials WHERE user_id = $1`, [alice.userId]);
      expect(after.version).toBe(version + 1);
      expect(new Date(after.expires_at).getTime()).toBeGreaterThan(Date.now());
    });

    it('a refresh token revoked at the authorization server turns the next call into a new URL elicitation, audited, not a 500', async () => {
      await as.revokeRefreshTokens();
      await db.query(`UPDATE upstream_credentials SET expires_at = now() - interval '1 minute' WHERE user_id = $1`, [alice.userId]);
      const agent = await urlAgent(t, alice);
      try {
        const elicitation = await elicitationOf(agent, 'docs.whoami');
        expect(elicitation.url).toMatch(new RegExp(`^${issuer}/connect/upstream/`));
      } finally {
        await agent.close();
      }
      const [failed] = await db.query(
        `SELECT details, result FROM audit_logs WHERE action = 'upstream.credential.refresh_failed' AND user_id = $1`,
        [alice.userId],
      );
      expect(failed).toEqual({ details: { upstream: 'docs', mode: 'user-oauth', reason: 'invalid_grant' }, result: 'failure' });
      const list = await http(t.baseUrl, 'GET', '/api/v1/upstream-connections', { token: alice.token });
      expect(list.body.connections.map((c: Record<string, unknown>) => [c.upstream, c.mode, c.connected, c.broken])).toEqual([
        ['docs', 'user-oauth', false, true],
      ]);
    });

    it("a suspended user's connection is unusable at once; disconnecting deletes it", async () => {
      const admin = await login(t, ADMIN_EMAIL);
      expect((await http(t.baseUrl, 'POST', `/api/v1/admin/users/${bob.userId}/suspend`, { token: admin.token, body: {} })).status).toBe(
        200,
      );
      const { UpstreamCredentialService } = await import('@app/tools');
      expect(await t.app.get(UpstreamCredentialService).forCall(bob.userId, 'docs')).toBeUndefined();
      const res = await http(t.baseUrl, 'DELETE', '/api/v1/upstream-connections/docs', { token: alice.token });
      expect(res.status).toBe(200);
      const [row] = await db.query(`SELECT count(*)::int AS n FROM upstream_credentials WHERE user_id = $1`, [alice.userId]);
      expect(row.n).toBe(0);
    });

    it("disconnecting revokes the user's refresh token at the upstream's authorization server too (RFC 7009), audited after the deletion", async () => {
      const doraEmail = 'dora.oauth@example.com';
      const dora = await signUp(t, doraEmail);
      const link = /open (\S+) in a browser/.exec((await execute(t, dora, 'docs.whoami', { parameters: {} })).body.error.message)?.[1];
      expect(
        (await connectInBrowser({ link: String(link), gateway: issuer, as, email: doraEmail, upstreamLogin: 'dora-at-docs' })).title,
      ).toBe('Connected');
      expect(await as.usableRefreshTokens('dora-at-docs')).toBe(1);

      const res = await http(t.baseUrl, 'DELETE', '/api/v1/upstream-connections/docs', { token: dora.token });
      expect(res.status).toBe(200);
      expect(await as.usableRefreshTokens('dora-at-docs')).toBe(0);
      const records = await db.query(
        `SELECT action, result, details FROM audit_logs WHERE user_id = $1 AND action LIKE 'upstream.credential.%' ORDER BY seq`,
        [dora.userId],
      );
      expect(records.slice(-2)).toEqual([
        { action: 'upstream.credential.deleted', result: 'success', details: { upstream: 'docs', mode: 'user-oauth', version: 1 } },
        {
          action: 'upstream.credential.revoked',
          result: 'success',
          // oidc-provider does not revoke its JWT access tokens (RFC 7009 unsupported_token_type): short-lived, they expire.
          details: { upstream: 'docs', mode: 'user-oauth', revoked: ['refresh_token'], notRevocable: ['access_token'] },
        },
      ]);
    });
  });
});

describe('auth: user-oauth at start', () => {
  it('refuses to start without the OAuth sign-in pages (users could not connect), naming the upstream', async () => {
    const file = writeUpstreamsFile(mkdtempSync(join(tmpdir(), 'smcp-user-oauth-off-')), [
      {
        name: 'docs',
        transport: 'http',
        url: 'https://docs.example.com/mcp',
        category: 'system',
        permissions: ['tools:execute'],
        auth: { mode: 'user-oauth', clientId: UPSTREAM_CLIENT_ID },
      },
    ]);
    await expect(startTestApp('postgres', { env: toolsEnv({ MCP_UPSTREAMS_FILE: file, OAUTH_ENABLED: 'false' }) })).rejects.toThrow(
      'MCP_UPSTREAMS_FILE: upstream "docs": auth.mode user-oauth needs the OAuth sign-in pages (OAUTH_ENABLED=true with OAUTH_ISSUER, the gateway\'s public origin), where users\' browsers sign in to connect their accounts',
    );
  });
});
