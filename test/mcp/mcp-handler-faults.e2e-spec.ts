import { Client } from '@modelcontextprotocol/client';
import { startTestApp, TestApp } from '../support/test-app';
import { createTestDatabase, TestDatabase } from '../support/test-database';
import { TcpProxy } from '../support/tcp-proxy';
import { Caller, connectHttp, Era, eventually, mcpEnv, signUp } from './mcp-test-kit';
import { McpTestToolsModule } from './mcp-test-tools.module';

/** What a rejected SDK call carried: the JSON-RPC error's code, message and data. */
async function rejectionOf(call: Promise<unknown>): Promise<{ code: unknown; message: unknown; data: unknown }> {
  try {
    await call;
  } catch (error) {
    const { code, message, data } = error as { code?: unknown; message?: unknown; data?: unknown };
    return { code, message, data };
  }
  throw new Error('the call succeeded');
}

/**
 * A fault inside an MCP request handler (here: PostgreSQL going away while a tool runs, so its
 * result cannot be recorded) reaches the agent as the REST API would answer it — a 503 to retry,
 * with the contract's code — never as the driver's own message (the SDK would otherwise send any
 * thrown error's text: "Connection terminated unexpectedly", "PostgreSQL unavailable: …"). The
 * database sits behind a TCP proxy the test cuts; the gateway recovers once it is back.
 */
describe('MCP handler faults: a database outage mid-call is a 503 to the agent, not the driver message (postgres)', () => {
  const proxy = new TcpProxy('127.0.0.1', 5432);
  let database: TestDatabase;
  let t: TestApp;
  let user: Caller;
  const clients: Client[] = [];

  beforeAll(async () => {
    database = await createTestDatabase('smcp', { schema: 'migrated' });
    const port = await proxy.start();
    const proxied = new URL(database.url);
    proxied.port = String(port);
    t = await startTestApp('postgres', {
      env: mcpEnv({ DATABASE_URL: proxied.toString(), DATABASE_CONNECT_TIMEOUT_MS: '1000' }),
      reuse: { database, dataDir: '' },
      extraModules: [McpTestToolsModule],
    });
    user = await signUp(t, 'handler-faults@example.com');
  });

  afterAll(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await t?.close();
    await proxy.cut();
  });

  it.each<Era>(['modern', 'legacy'])(
    '%s era: the call in flight gets -32000 with data {status 503, SERVICE_UNAVAILABLE, retryAfter}; after the outage calls work',
    async (era) => {
      const { client } = await connectHttp(`${t.baseUrl}/api/v1/mcp`, user.token, era);
      clients.push(client);
      let cut: Promise<void> | undefined;
      const call = client.callTool(
        { name: 'tool_progress', arguments: { steps: 4, stepMs: 250 } },
        // The tool is running (its first step is done): take the database away before it returns.
        { onprogress: () => (cut ??= proxy.cut()) },
      );
      const refused = await rejectionOf(call);
      await cut;
      expect(refused).toEqual({
        code: -32000,
        message: 'Database temporarily unavailable',
        data: { status: 503, error: 'SERVICE_UNAVAILABLE', retryAfter: 5 },
      });

      await proxy.restore();
      const result = await eventually(
        () =>
          client
            .callTool({ name: 'tool_progress', arguments: { steps: 1, stepMs: 0 } })
            .catch((error: Error) => ({ error: error.message })),
        (answer) => !('error' in answer),
        20_000,
        250,
      );
      expect(result).toMatchObject({ structuredContent: { counted: 1 } });
    },
  );
});
