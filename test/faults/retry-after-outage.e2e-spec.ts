import { Client } from 'pg';
import { http } from '../support/test-app';
import { TcpProxy } from '../support/tcp-proxy';
import { eventually, FaultServer, loginAdmin, sleep, startFaultServer, unlimitEcho } from './fault-kit';

/**
 * The idempotency contract across a database outage: a synchronous call with `context.requestId`
 * whose result cannot be recorded (the database went silent while the tool ran) is answered 503
 * with Retry-After, and the retry the 503 invites, with the same requestId, gets that call's
 * outcome, not a `running` row that no process will ever finish. PostgreSQL behind a proxy.
 */
const STATEMENT_MS = 1_500;
const CONNECT_MS = 1_000;
const CALL_MS = 1_500;

describe('retry after a 503 (built server, PostgreSQL behind a proxy)', () => {
  let fault: FaultServer | undefined;
  let proxy: TcpProxy | undefined;
  afterAll(async () => {
    await fault?.cleanup();
    await proxy?.cut();
  });

  it('a retry with the same requestId answers the one execution, completed, once the database is back', async () => {
    fault = await startFaultServer(
      async (database) => {
        const target = new URL(database.url);
        proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
        target.host = `127.0.0.1:${await proxy.start()}`;
        return target.toString();
      },
      {
        DATABASE_CONNECT_TIMEOUT_MS: String(CONNECT_MS),
        DATABASE_STATEMENT_TIMEOUT_MS: String(STATEMENT_MS),
      },
    );
    const { server, database } = fault;
    const token = await loginAdmin(server.baseUrl);
    await unlimitEcho(server.baseUrl, token);
    const requestId = 'retry-after-outage-1';
    const call = () =>
      http(server.baseUrl, 'POST', '/api/v1/tools/tool_echo/execute', {
        token,
        body: { parameters: { message: 'once', delayMs: CALL_MS }, context: { requestId } },
      });

    // The call is accepted and running when the database goes silent; it ends while it is.
    const first = call();
    await sleep(CALL_MS / 3);
    proxy!.stall();
    const unavailable = await first;
    expect({ status: unavailable.status, error: unavailable.body.error }).toEqual({ status: 503, error: 'SERVICE_UNAVAILABLE' });
    expect(unavailable.headers.get('retry-after')).toEqual(expect.stringMatching(/^\d+$/));

    proxy!.resume();
    await eventually(async () => (await http(server.baseUrl, 'GET', '/api/v1/ready')).status === 200, 20_000);

    const retry = await call();
    expect({ status: retry.status, executionStatus: retry.body.status, result: retry.body.result }).toEqual({
      status: 200,
      executionStatus: 'completed',
      result: { message: 'once' },
    });

    // Straight from PostgreSQL: one execution for the key, completed, the one the retry named,
    // with one audit record; and it stays that way (no sweeper turns it into an interruption).
    const pg = new Client({ connectionString: database.url });
    await pg.connect();
    try {
      const { rows: executions } = await pg.query(`SELECT id, status, locked_by FROM tool_executions WHERE request_id = $1`, [requestId]);
      expect(executions).toEqual([{ id: retry.body.executionId, status: 'completed', locked_by: null }]);
      const { rows: audits } = await pg.query(
        `SELECT result FROM audit_logs WHERE action = 'tool.execute' AND details->>'executionId' = $1`,
        [retry.body.executionId],
      );
      expect(audits).toEqual([{ result: 'success' }]);
    } finally {
      await pg.end();
    }
    const again = await call();
    expect({ status: again.status, executionId: again.body.executionId, executionStatus: again.body.status }).toEqual({
      status: 200,
      executionId: retry.body.executionId,
      executionStatus: 'completed',
    });
  });
});
