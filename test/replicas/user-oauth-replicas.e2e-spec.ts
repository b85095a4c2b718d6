import { Client, StreamableHTTPClientTransport, UrlElicitationRequiredError } from '@modelcontextprotocol/client';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { Client as PgClient } from 'pg';
import { waitFor } from '../support/polling';
import { ServerProcess } from '../support/server-process';
import { TestDatabase } from '../support/test-database';
import { Caller, execute, signUp } from '../tools/tools-test-kit';
import {
  connectInBrowser,
  UPSTREAM_CLIENT_ID,
  UPSTREAM_CLIENT_SECRET,
  UpstreamAuthorizationServer,
  userOAuthDocsEntry,
} from '../upstream/upstream-as';
import { ReferenceUpstream, startListeningScript, writeUpstreamsFile } from '../upstream/upstream-test-kit';
import { ReplicaSet } from './replica-kit';

const WHOAMI = join(__dirname, '..', 'upstream', 'fixtures', 'whoami-upstream.cjs');
const LISTING_TOKEN = 'gateway-listing-token-oauth-02';

async function sql<T>(database: TestDatabase, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new PgClient({ connectionString: database.url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end();
  }
}

/**
 * `auth: user-oauth` on two replicas sharing PostgreSQL and Redis: the user connects once (through
 * replica a, in headless Chromium); with the stored access token expired, 20 concurrent calls split
 * across both replicas make exactly one refresh request reach the upstream's authorization server
 * (counted at its token endpoint), and every call succeeds with the refreshed token.
 */
describe('user-oauth refresh across two replicas', () => {
  const replicas = new ReplicaSet();
  let as: UpstreamAuthorizationServer;
  let upstream: ReferenceUpstream;
  let database: TestDatabase;
  let a: ServerProcess;
  let b: ServerProcess;
  let dana: Caller;

  beforeAll(async () => {
    as = await UpstreamAuthorizationServer.listen();
    upstream = await startListeningScript(WHOAMI, [LISTING_TOKEN, as.jwksUri, 'self', as.issuer]);
    const file = writeUpstreamsFile(mkdtempSync(join(tmpdir(), 'smcp-oauth-replicas-')), [userOAuthDocsEntry(upstream.url)]);
    const deployment = await replicas.deployment({
      MCP_UPSTREAMS_FILE: file,
      UPSTREAM_DOCS_LISTING: LISTING_TOKEN,
      UPSTREAM_DOCS_CLIENT_SECRET: UPSTREAM_CLIENT_SECRET,
    });
    database = deployment.database;
    a = await replicas.start(deployment.env);
    b = await replicas.start(deployment.env);
    await as.configure(`${a.baseUrl}/connect/callback`);
    dana = await signUp({ baseUrl: a.baseUrl } as never, 'dana.replicas@example.com');
    for (const server of [a, b]) {
      await waitFor(
        'docs in the catalogue',
        async () =>
          (await execute({ baseUrl: server.baseUrl } as never, dana, 'docs.whoami', { parameters: {} })).body?.error?.code ===
          'UPSTREAM_CREDENTIAL_REQUIRED',
        60_000,
      );
    }
  }, 180_000);

  afterAll(async () => {
    await replicas.stopAll();
    upstream?.child.kill('SIGTERM');
    await as?.close();
  });

  it('refreshes an expired token exactly once for 20 concurrent calls on two replicas, every call succeeding', async () => {
    const agent = new Client({ name: 'url-elicitation-agent', version: '1.0.0' }, { capabilities: { elicitation: { url: {} } } });
    await agent.connect(
      new StreamableHTTPClientTransport(new URL(`${a.baseUrl}/api/v1/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${dana.token}` } },
      }),
    );
    const error = await agent.callTool({ name: 'docs.whoami', arguments: {} }).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    await agent.close();
    expect(error).toBeInstanceOf(UrlElicitationRequiredError);
    const link = String((error as UrlElicitationRequiredError).elicitations[0].url);
    const done = await connectInBrowser({
      link,
      gateway: a.baseUrl,
      as,
      email: 'dana.replicas@example.com',
      upstreamLogin: 'dana-at-docs',
    });
    expect(done.title).toBe('Connected');

    await sql(database, `UPDATE upstream_credentials SET expires_at = now() - interval '1 minute' WHERE user_id = $1`, [dana.userId]);
    const [before] = await sql<{ version: number }>(database, `SELECT version FROM upstream_credentials WHERE user_id = $1`, [dana.userId]);
    const refreshesBefore = as.refreshRequests;
    const calls = Array.from({ length: 20 }, (_, i) =>
      execute({ baseUrl: (i % 2 === 0 ? a : b).baseUrl } as never, dana, 'docs.whoami', { parameters: {} }),
    );
    const results = await Promise.all(calls);
    expect(results.map((res) => res.body.status)).toEqual(Array.from({ length: 20 }, () => 'completed'));
    const tokens = new Set(results.map((res) => String(res.body.result.structuredContent.token)));
    expect(tokens.size).toBe(1);
    expect(decodeJwt([...tokens][0]).sub).toBe('dana-at-docs');
    expect(as.refreshRequests - refreshesBefore).toBe(1);
    const [after] = await sql<{ version: number }>(database, `SELECT version FROM upstream_credentials WHERE user_id = $1`, [dana.userId]);
    expect(after.version).toBe(before.version + 1);
    const refreshed = await sql(database, `SELECT 1 FROM audit_logs WHERE action = 'upstream.credential.refreshed' AND user_id = $1`, [
      dana.userId,
    ]);
    expect(refreshed).toHaveLength(1);
  });
});
