import { createPublicKey } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallToolResult, Client, StreamableHTTPClientTransport, UrlElicitationRequiredError } from '@modelcontextprotocol/client';
import { decodeJwt } from 'jose';
import { DataSource } from 'typeorm';
import { UpstreamCredentialService } from '@app/tools';
import { connectHttp } from '../mcp/mcp-test-kit';
import { http, startTestApp, TestApp } from '../support/test-app';
import { controlClock } from '../support/identity';
import { ADMIN_EMAIL, Caller, execute, login, signUp, toolsEnv } from '../tools/tools-test-kit';
import { EXCHANGE_CLIENT_ID, EXCHANGE_CLIENT_SECRET, ExchangeIdp } from './exchange-idp';
import { ReferenceUpstream, waitFor, writeUpstreamsFile } from './upstream-test-kit';
import { seenByUpstream, startWhoami, whoamiEntry } from './whoami-kit';

/** The gateway's own credential: for the catalogue connection (tools/list) only, never on a call. */
const LISTING_TOKEN = 'gateway-listing-token-0001';
const SECRETS = { alice: 'alice-pat-7f3a9c', bob: 'bob-pat-51d2e8', aliceNew: 'alice-pat-rotated-88', stranger: 'not-accepted-upstream' };
const CONNECT_URL = 'https://portal.example.com/connect/who';

type Whoami = ReferenceUpstream;

const entry = whoamiEntry('UPSTREAM_WHO_LISTING');

function tokenOf(result: CallToolResult): unknown {
  return (result.structuredContent as { token?: unknown } | undefined)?.token;
}

function putSecret(t: TestApp, caller: Caller, upstream: string, secret: unknown) {
  return http(t.baseUrl, 'PUT', `/api/v1/upstream-connections/${upstream}`, { token: caller.token, body: { secret } });
}

/**
 * Issue 17, `auth: user-secret`: each user's own personal token reaches the upstream on that
 * user's calls — never another user's, never the gateway's, never the client's token to us —
 * over both protocol eras (the 2025 one with upstream sessions bound to their user). The
 * upstream is our own on the official v2 server SDK (fixtures/whoami-upstream.cjs); it answers
 * 401 to any token it was not started with and reports the token each call carried.
 */
describe('Per-user upstream credentials (auth: user-secret)', () => {
  let t: TestApp;
  let upstream: Whoami;
  let db: DataSource;
  let admin: Caller;
  let alice: Caller;
  let bob: Caller;

  beforeAll(async () => {
    upstream = await startWhoami([LISTING_TOKEN, SECRETS.alice, SECRETS.bob, SECRETS.aliceNew]);
    const dir = mkdtempSync(join(tmpdir(), 'smcp-user-creds-'));
    const file = writeUpstreamsFile(dir, [
      entry('who', upstream.url, { auth: { mode: 'user-secret', connectUrl: CONNECT_URL } }),
      entry('wholegacy', upstream.url, { auth: 'user-secret', protocol: 'legacy' }),
    ]);
    t = await startTestApp('postgres', { env: toolsEnv({ MCP_UPSTREAMS_FILE: file, UPSTREAM_WHO_LISTING: LISTING_TOKEN }) });
    db = t.app.get(DataSource);
    admin = await login(t, ADMIN_EMAIL);
    alice = await signUp(t, 'alice.creds@example.com');
    bob = await signUp(t, 'bob.creds@example.com');
    await waitFor("the upstreams' tools in the catalogue", async () => {
      const [a, b] = await Promise.all([
        execute(t, admin, 'who.whoami', { parameters: {} }),
        execute(t, admin, 'wholegacy.whoami', { parameters: {} }),
      ]);
      return a.body?.error?.code === 'UPSTREAM_CREDENTIAL_REQUIRED' && b.body?.error?.code === 'UPSTREAM_CREDENTIAL_REQUIRED';
    });
  });

  afterAll(async () => {
    await t?.close();
    upstream?.child.kill('SIGTERM');
  });

  it('is in the Swagger document as extensions, the secret write-only', async () => {
    const doc = (await http(t.baseUrl, 'GET', '/api/docs-json')).body;
    const operations: Array<[string, string]> = [
      ['/upstream-connections', 'get'],
      ['/upstream-connections/{upstream}', 'put'],
      ['/upstream-connections/{upstream}', 'delete'],
      ['/admin/upstream-connections', 'get'],
    ];
    for (const [path, method] of operations) {
      expect({ path, method, summary: doc.paths[path]?.[method]?.summary }).toEqual({
        path,
        method,
        summary: expect.stringMatching(/extension\)$/),
      });
    }
    expect(doc.components.schemas.StoreUpstreamSecretRequest.properties.secret.writeOnly).toBe(true);
    expect(doc.components.schemas.UpstreamConnection.properties.secret).toBeUndefined();
  });

  describe('a user without a secret', () => {
    it('gets UPSTREAM_CREDENTIAL_REQUIRED over REST, naming the connect page and the route to set it', async () => {
      const res = await execute(t, alice, 'who.whoami', { parameters: {} });
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('failed');
      expect(res.body.error.code).toBe('UPSTREAM_CREDENTIAL_REQUIRED');
      expect(res.body.error.message).toBe(
        `Upstream who acts with your own credential and you have none stored: set it at ${CONNECT_URL} or with PUT /api/v1/upstream-connections/who, then try again`,
      );
    });

    it('gets it as an isError result over MCP when the agent did not declare URL elicitation', async () => {
      const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, alice.token, 'modern');
      const result = (await client.callTool({ name: 'wholegacy.whoami', arguments: {} })) as CallToolResult;
      await client.close();
      expect(result.isError).toBe(true);
      expect((result.content[0] as { text: string }).text).toBe(
        'UPSTREAM_CREDENTIAL_REQUIRED: Upstream wholegacy acts with your own credential and you have none stored: set it with PUT /api/v1/upstream-connections/wholegacy, then try again',
      );
    });

    it('gets a URL-mode elicitation to the connect page when its SDK client declared URL elicitation', async () => {
      const client = new Client({ name: 'url-elicitation-agent', version: '1.0.0' }, { capabilities: { elicitation: { url: {} } } });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${t.baseUrl}/api/v1/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${alice.token}` } },
        }),
      );
      const error = await client.callTool({ name: 'who.whoami', arguments: {} }).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      await client.close();
      expect(error).toBeInstanceOf(UrlElicitationRequiredError);
      const [elicitation] = (error as UrlElicitationRequiredError).elicitations;
      expect(elicitation.mode).toBe('url');
      expect(elicitation.url).toBe(CONNECT_URL);
      expect(typeof elicitation.elicitationId).toBe('string');
    });
  });

  describe('storing, listing and using secrets', () => {
    beforeAll(async () => {
      for (const [caller, secret] of [
        [alice, SECRETS.alice],
        [bob, SECRETS.bob],
      ] as const) {
        for (const name of ['who', 'wholegacy']) {
          const res = await putSecret(t, caller, name, secret);
          if (res.status !== 200) throw new Error(`PUT ${name}: ${res.status} ${res.text}`);
        }
      }
    });

    it('answers a PUT with the connection, never the secret, and lists connections without secrets', async () => {
      const res = await putSecret(t, alice, 'who', SECRETS.alice);
      expect(res.status).toBe(200);
      expect(Object.keys(res.body).sort()).toEqual([
        'broken',
        'connectUrl',
        'connected',
        'createdAt',
        'lastUsedAt',
        'mode',
        'updatedAt',
        'upstream',
      ]);
      expect(res.body).toMatchObject({ upstream: 'who', mode: 'user-secret', connected: true, broken: false, connectUrl: CONNECT_URL });
      const list = await http(t.baseUrl, 'GET', '/api/v1/upstream-connections', { token: alice.token });
      expect(list.status).toBe(200);
      expect(list.body.connections.map((c: Record<string, unknown>) => [c.upstream, c.connected])).toEqual([
        ['who', true],
        ['wholegacy', true],
      ]);
      for (const connection of list.body.connections) expect(connection.secret).toBeUndefined();
    });

    it('refuses a secret that could break a header, and an upstream that takes no user credential', async () => {
      const broken = await putSecret(t, alice, 'who', 'abc\r\nX-Injected: 1');
      expect(broken.status).toBe(400);
      expect(broken.body.error).toBe('VALIDATION_ERROR');
      const unknown = await putSecret(t, alice, 'nope', SECRETS.alice);
      expect(unknown.status).toBe(404);
    });

    it.each([
      ['who', 'modern'],
      ['wholegacy', 'legacy'],
    ] as const)(
      '%s: concurrent calls of two users each reach the upstream with that user’s own secret only (%s era upstream)',
      async (name, _era) => {
        const before = (await seenByUpstream(upstream)).length;
        const [aliceMcp, bobMcp] = await Promise.all([
          connectHttp(`${t.baseUrl}/api/v1/mcp`, alice.token, 'modern'),
          connectHttp(`${t.baseUrl}/api/v1/mcp`, bob.token, 'legacy'),
        ]);
        const calls: Array<Promise<[string, unknown]>> = [];
        for (let i = 0; i < 6; i += 1) {
          calls.push(
            aliceMcp.client.callTool({ name: `${name}.whoami`, arguments: {} }).then((r) => ['alice', tokenOf(r as CallToolResult)]),
          );
          calls.push(bobMcp.client.callTool({ name: `${name}.whoami`, arguments: {} }).then((r) => ['bob', tokenOf(r as CallToolResult)]));
          calls.push(
            execute(t, alice, `${name}.whoami`, { parameters: {} }).then((r) => ['alice', r.body.result?.structuredContent?.token]),
          );
          calls.push(execute(t, bob, `${name}.whoami`, { parameters: {} }).then((r) => ['bob', r.body.result?.structuredContent?.token]));
        }
        const results = await Promise.all(calls);
        await Promise.all([aliceMcp.client.close(), bobMcp.client.close()]);
        for (const [who, token] of results) expect(token).toBe(who === 'alice' ? SECRETS.alice : SECRETS.bob);
        const seen = (await seenByUpstream(upstream)).slice(before);
        expect(seen).toHaveLength(24);
        expect(seen.filter((token) => token === SECRETS.alice)).toHaveLength(12);
        expect(seen.filter((token) => token === SECRETS.bob)).toHaveLength(12);
        // Never the gateway's listing credential, never a client's token to the gateway.
        expect(seen).not.toContain(LISTING_TOKEN);
        expect(seen).not.toContain(alice.token);
        expect(seen).not.toContain(bob.token);
      },
    );

    it('keeps no plaintext secret in the database: the table holds ciphertext, the audit trail neither', async () => {
      const rows: Array<Record<string, unknown>> = await db.query(`SELECT * FROM upstream_credentials`);
      expect(rows.length).toBeGreaterThanOrEqual(4);
      const audit: Array<Record<string, unknown>> = await db.query(`SELECT * FROM audit_logs WHERE action LIKE 'upstream.credential.%'`);
      for (const row of [...rows, ...audit]) {
        for (const value of Object.values(row)) {
          const text = typeof value === 'string' ? value : JSON.stringify(value ?? null);
          for (const secret of Object.values(SECRETS)) expect(text).not.toContain(secret);
        }
      }
      for (const row of rows) expect(String(row.secret_ciphertext).split('.')[0]).toBe('uc1');
    });

    it('audits every store and use with the user', async () => {
      const rows: Array<{ action: string; user_id: string; details: Record<string, unknown> }> = await db.query(
        `SELECT action, user_id, details FROM audit_logs WHERE action LIKE 'upstream.credential.%' AND user_id = $1 ORDER BY timestamp`,
        [alice.userId],
      );
      const stored = rows.filter((row) => row.action === 'upstream.credential.stored');
      const used = rows.filter((row) => row.action === 'upstream.credential.used');
      expect(stored.map((row) => row.details.upstream)).toEqual(expect.arrayContaining(['who', 'wholegacy']));
      // 12 calls of alice per upstream above.
      expect(used.filter((row) => row.details.upstream === 'who').length).toBeGreaterThanOrEqual(12);
      expect(used.filter((row) => row.details.upstream === 'wholegacy').length).toBeGreaterThanOrEqual(12);
    });

    it('a replaced secret is used from the next call on', async () => {
      expect((await putSecret(t, alice, 'who', SECRETS.aliceNew)).status).toBe(200);
      const res = await execute(t, alice, 'who.whoami', { parameters: {} });
      expect(res.body.result.structuredContent.token).toBe(SECRETS.aliceNew);
    });

    it('a secret the upstream refuses gives UPSTREAM_CREDENTIAL_REJECTED and an audit record, not a 500', async () => {
      expect((await putSecret(t, bob, 'wholegacy', SECRETS.stranger)).status).toBe(200);
      const res = await execute(t, bob, 'wholegacy.whoami', { parameters: {} });
      expect(res.body.status).toBe('failed');
      expect(res.body.error.code).toBe('UPSTREAM_CREDENTIAL_REJECTED');
      const [rejected] = await db.query(
        `SELECT user_id, details FROM audit_logs WHERE action = 'upstream.credential.rejected' AND user_id = $1`,
        [bob.userId],
      );
      expect(rejected.details).toEqual({ upstream: 'wholegacy', status: 401 });
      expect((await putSecret(t, bob, 'wholegacy', SECRETS.bob)).status).toBe(200);
      expect((await execute(t, bob, 'wholegacy.whoami', { parameters: {} })).body.result.structuredContent.token).toBe(SECRETS.bob);
    });

    it('admins see who is connected to what, never a secret', async () => {
      const res = await http(t.baseUrl, 'GET', '/api/v1/admin/upstream-connections?upstream=who', { token: admin.token });
      expect(res.status).toBe(200);
      expect(res.body.connections.map((c: Record<string, unknown>) => c.email).sort()).toEqual([
        'alice.creds@example.com',
        'bob.creds@example.com',
      ]);
      for (const connection of res.body.connections) {
        expect(Object.keys(connection).sort()).toEqual([
          'createdAt',
          'email',
          'lastUsedAt',
          'mode',
          'updatedAt',
          'upstream',
          'userId',
          'userStatus',
        ]);
      }
    });

    it('deleting (disconnecting) makes the next call need a secret again, audited', async () => {
      const res = await http(t.baseUrl, 'DELETE', '/api/v1/upstream-connections/who', { token: alice.token });
      expect(res.status).toBe(200);
      expect(res.body.connected).toBe(false);
      expect((await execute(t, alice, 'who.whoami', { parameters: {} })).body.error.code).toBe('UPSTREAM_CREDENTIAL_REQUIRED');
      expect((await http(t.baseUrl, 'DELETE', '/api/v1/upstream-connections/who', { token: alice.token })).status).toBe(404);
      const [deleted] = await db.query(`SELECT details FROM audit_logs WHERE action = 'upstream.credential.deleted' AND user_id = $1`, [
        alice.userId,
      ]);
      expect(deleted.details.upstream).toBe('who');
      const [row] = await db.query(`SELECT count(*)::int AS n FROM upstream_credentials WHERE user_id = $1 AND upstream = 'who'`, [
        alice.userId,
      ]);
      expect(row.n).toBe(0);
    });

    it("a suspended user's stored credential is unusable at once", async () => {
      const credentials = t.app.get(UpstreamCredentialService);
      expect((await credentials.forCall(bob.userId, 'who'))?.secret).toBe(SECRETS.bob);
      const suspended = await http(t.baseUrl, 'POST', `/api/v1/admin/users/${bob.userId}/suspend`, { token: admin.token, body: {} });
      expect(suspended.status).toBe(200);
      expect(await credentials.forCall(bob.userId, 'who')).toBeUndefined();
      const res = await http(t.baseUrl, 'GET', '/api/v1/admin/upstream-connections?upstream=who', { token: admin.token });
      expect(res.body.connections.find((c: Record<string, unknown>) => c.userId === bob.userId).userStatus).toBe('suspended');
    });
  });
});

/**
 * Rotating ENCRYPTION_KEY: stored secrets sealed under the old key keep working when it is listed
 * in ENCRYPTION_KEY_PREVIOUS, are re-sealed under the new key at their next use, and then no
 * longer need the old one. Three starts of the gateway on the same database.
 */
describe('Per-user upstream credentials across an ENCRYPTION_KEY rotation', () => {
  const OLD_KEY = 'old-encryption-key-for-the-rotation-test-000001';
  const NEW_KEY = 'new-encryption-key-for-the-rotation-test-000002';
  const SECRET = 'carol-pat-4e1b0d';
  let t: TestApp;
  let upstream: Whoami;
  let env: Record<string, string>;

  const keyIdOf = async (userId: string): Promise<string> => {
    const [row] = await t.app.get(DataSource).query(`SELECT secret_ciphertext FROM upstream_credentials WHERE user_id = $1`, [userId]);
    return String(row.secret_ciphertext).split('.')[1];
  };
  const call = async (email: string) => {
    const carol = await login(t, email);
    await waitFor('the upstream tool in the catalogue', async () => {
      const res = await execute(t, carol, 'who.whoami', { parameters: {} });
      return res.body?.status === 'completed' ? res : undefined;
    });
    return (await execute(t, carol, 'who.whoami', { parameters: {} })).body;
  };

  beforeAll(async () => {
    upstream = await startWhoami([LISTING_TOKEN, SECRET]);
    const dir = mkdtempSync(join(tmpdir(), 'smcp-user-creds-rotation-'));
    const file = writeUpstreamsFile(dir, [entry('who', upstream.url, { auth: 'user-secret' })]);
    env = toolsEnv({ MCP_UPSTREAMS_FILE: file, UPSTREAM_WHO_LISTING: LISTING_TOKEN });
    t = await startTestApp('postgres', { env: { ...env, ENCRYPTION_KEY: OLD_KEY } });
  });

  afterAll(async () => {
    await t?.close();
    upstream?.child.kill('SIGTERM');
  });

  it('keeps working, re-seals under the new key at first use, then needs the old key no more', async () => {
    const carol = await signUp(t, 'carol.rotation@example.com');
    expect((await putSecret(t, carol, 'who', SECRET)).status).toBe(200);
    const oldKeyId = await keyIdOf(carol.userId);

    await t.stop();
    t = await startTestApp('postgres', { env: { ...env, ENCRYPTION_KEY: NEW_KEY, ENCRYPTION_KEY_PREVIOUS: OLD_KEY }, reuse: t });
    expect((await call('carol.rotation@example.com')).result.structuredContent.token).toBe(SECRET);
    const newKeyId = await keyIdOf(carol.userId);
    expect(newKeyId).not.toBe(oldKeyId);
    const [resealed] = await t.app
      .get(DataSource)
      .query(
        `SELECT details FROM audit_logs WHERE action = 'upstream.credential.used' AND user_id = $1 AND (details->>'resealed')::boolean`,
        [carol.userId],
      );
    expect(resealed.details.upstream).toBe('who');

    await t.stop();
    t = await startTestApp('postgres', { env: { ...env, ENCRYPTION_KEY: NEW_KEY }, reuse: t });
    expect((await call('carol.rotation@example.com')).result.structuredContent.token).toBe(SECRET);
    expect(await keyIdOf(carol.userId)).toBe(newKeyId);
  });
});

/**
 * `auth: token-exchange` (RFC 8693): the gateway signs a short-lived JWT about the caller and
 * exchanges it at the IdP (oidc-provider with the token-exchange grant registered) for a token of
 * the upstream's audience. The upstream (a resource server checking the IdP's signature and its
 * audience) sees each user's own token carrying that user as subject; tokens are cached until
 * shortly before they expire.
 */
describe('Per-user upstream credentials (auth: token-exchange)', () => {
  const AUDIENCE = 'api://crm';
  let t: TestApp;
  let idp: ExchangeIdp;
  let upstream: Whoami;

  beforeAll(async () => {
    idp = await ExchangeIdp.start('secure-mcp-gateway');
    upstream = await startWhoami([LISTING_TOKEN], [idp.jwksUri, AUDIENCE]);
    const dir = mkdtempSync(join(tmpdir(), 'smcp-token-exchange-'));
    const exchange = (audience: string) => ({
      auth: {
        mode: 'token-exchange',
        tokenEndpoint: idp.tokenEndpoint,
        clientId: EXCHANGE_CLIENT_ID,
        clientSecret: { fromEnv: 'UPSTREAM_CRM_EXCHANGE_SECRET' },
        audience,
      },
    });
    // crmwrong asks the IdP for tokens of another audience, which the upstream refuses.
    const file = writeUpstreamsFile(dir, [
      entry('crm', upstream.url, exchange(AUDIENCE)),
      entry('crmwrong', upstream.url, exchange('api://elsewhere')),
    ]);
    t = await startTestApp('postgres', {
      env: toolsEnv({
        MCP_UPSTREAMS_FILE: file,
        UPSTREAM_WHO_LISTING: LISTING_TOKEN,
        UPSTREAM_CRM_EXCHANGE_SECRET: EXCHANGE_CLIENT_SECRET,
      }),
    });
    idp.trust(createPublicKey(t.config.secrets.oauthSigningKey));
  });

  afterAll(async () => {
    await t?.close();
    upstream?.child.kill('SIGTERM');
    await idp?.close();
  });

  it("each user's calls carry a token for the upstream's audience with that user as subject, exchanged once and then cached", async () => {
    const [dana, erik] = await Promise.all([signUp(t, 'dana.exchange@example.com'), signUp(t, 'erik.exchange@example.com')]);
    await waitFor('the upstream tool in the catalogue', async () => {
      const res = await execute(t, dana, 'crm.whoami', { parameters: {} });
      return res.body?.status === 'completed' ? res : undefined;
    });
    const before = (await seenByUpstream(upstream)).length;
    const calls = [];
    for (let i = 0; i < 5; i += 1) {
      for (const caller of [dana, erik]) {
        calls.push(
          execute(t, caller, 'crm.whoami', { parameters: {} }).then((res) => [caller, res.body.result?.structuredContent?.token] as const),
        );
      }
    }
    for (const [caller, token] of await Promise.all(calls)) {
      const claims = decodeJwt(String(token));
      expect(claims.sub).toBe(caller.userId);
      expect(claims.aud).toBe(AUDIENCE);
      expect(claims.iss).toBe(idp.issuer);
    }
    const seen = (await seenByUpstream(upstream)).slice(before);
    expect(seen).toHaveLength(10);
    expect(seen).not.toContain(LISTING_TOKEN);
    expect(seen).not.toContain(dana.token);
    expect(seen).not.toContain(erik.token);
    expect(new Set(seen.map((token) => decodeJwt(String(token)).sub))).toEqual(new Set([dana.userId, erik.userId]));
    // One exchange per user (the waitFor call of dana's included), the rest from the cache.
    expect(idp.exchanges.filter((exchange) => exchange.sub === dana.userId)).toEqual([{ sub: dana.userId, audience: AUDIENCE }]);
    expect(idp.exchanges.filter((exchange) => exchange.sub === erik.userId)).toEqual([{ sub: erik.userId, audience: AUDIENCE }]);
  });

  it('exchanges again once the cached token is within 30 s of its expiry (600 s here)', async () => {
    const gus = await signUp(t, 'gus.exchange@example.com');
    const first = (await execute(t, gus, 'crm.whoami', { parameters: {} })).body.result.structuredContent.token;
    const clock = controlClock(t.app);
    try {
      clock.advance(560);
      const again = await login(t, 'gus.exchange@example.com');
      expect((await execute(t, again, 'crm.whoami', { parameters: {} })).body.result.structuredContent.token).toBe(first);
      expect(idp.exchanges.filter((exchange) => exchange.sub === gus.userId)).toHaveLength(1);
      clock.advance(20);
      const later = await login(t, 'gus.exchange@example.com');
      const second = (await execute(t, later, 'crm.whoami', { parameters: {} })).body.result.structuredContent.token;
      expect(second).not.toBe(first);
      expect(decodeJwt(String(second)).sub).toBe(gus.userId);
      expect(idp.exchanges.filter((exchange) => exchange.sub === gus.userId)).toHaveLength(2);
    } finally {
      clock.restore();
    }
  });

  it('a token the upstream refuses (wrong audience) is UPSTREAM_CREDENTIAL_REJECTED, audited, not a 500', async () => {
    const hal = await signUp(t, 'hal.exchange@example.com');
    const res = await waitFor('the crmwrong tool in the catalogue', async () => {
      const answer = await execute(t, hal, 'crmwrong.whoami', { parameters: {} });
      return answer.body?.status === 'failed' && answer.body.error.code !== 'NOT_FOUND' ? answer : undefined;
    });
    expect(res.body.error).toEqual({
      code: 'UPSTREAM_CREDENTIAL_REJECTED',
      message:
        'Upstream crmwrong refused the token the identity provider issued for you (HTTP 401): try again; ask an administrator if this persists',
    });
    const [rejected] = await t.app
      .get(DataSource)
      .query(`SELECT details FROM audit_logs WHERE action = 'upstream.credential.rejected' AND user_id = $1`, [hal.userId]);
    expect(rejected.details).toEqual({ upstream: 'crmwrong', status: 401 });
  });

  it("a suspended user's cached exchanged token is unusable at once", async () => {
    const ivy = await signUp(t, 'ivy.exchange@example.com');
    const credentials = t.app.get(UpstreamCredentialService);
    expect(decodeJwt(String((await credentials.forCall(ivy.userId, 'crm'))?.secret)).sub).toBe(ivy.userId);
    const admin = await login(t, ADMIN_EMAIL);
    expect((await http(t.baseUrl, 'POST', `/api/v1/admin/users/${ivy.userId}/suspend`, { token: admin.token, body: {} })).status).toBe(200);
    expect(await credentials.forCall(ivy.userId, 'crm')).toBeUndefined();
  });

  it('an exchange the IdP refuses is UPSTREAM_TOKEN_EXCHANGE_FAILED, not a 500', async () => {
    const fay = await signUp(t, 'fay.exchange@example.com');
    const { privateKey } = await import('node:crypto').then((crypto) => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    idp.trust(createPublicKey(privateKey));
    try {
      const res = await execute(t, fay, 'crm.whoami', { parameters: {} });
      expect(res.body.status).toBe('failed');
      expect(res.body.error.code).toBe('UPSTREAM_TOKEN_EXCHANGE_FAILED');
      expect(res.body.error.message).toBe(
        'The identity provider gave no token for upstream crm on your behalf (invalid_grant); ask an administrator if this persists',
      );
    } finally {
      idp.trust(createPublicKey(t.config.secrets.oauthSigningKey));
    }
  });
});
