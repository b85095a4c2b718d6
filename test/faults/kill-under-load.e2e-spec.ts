import { Client as PgClient } from 'pg';
import type { Client } from '@modelcontextprotocol/client';
import { connectHttp } from '../mcp/mcp-test-kit';
import { ADMIN_EMAIL, login, signUp } from '../support/identity';
import { http } from '../support/test-app';
import { eventually, FaultServer, loginAdmin, sleep, startFaultServer, unlimitEcho } from './fault-kit';

/**
 * kill -9 under a load of MCP tool calls, several times, then the database is checked: every call
 * the client got an answer for has its execution row, completed, and its audit record; calls cut
 * mid-run leave `running` rows that the sweeper fails (INTERRUPTED, audited) after the restart;
 * nothing is left running; the audit chain verifies. A synchronous call's `running` row goes into
 * the group commit while its tool already runs, and a call that ends first writes one final row:
 * this is what proves that this never answers a call the database does not have.
 * PostgreSQL only: the database must outlive the process (the embedded one lives inside it).
 */
const ROUNDS = 3;
const CLIENTS = 8;
/** Calls per round that are still running at the kill (their rows are committed `running` first). */
const LONG_CALLS = 2;
/** Short enough that the sweeper settles the long calls soon after the restart (lease = timeout + grace). */
const TIMEOUT_MS = 4_000;
const LEASE_GRACE_MS = 500;

interface Answer {
  message: string;
  userId: string;
  echoed: unknown;
  isError: boolean;
}

/** Echo calls back to back on one MCP client until `stop()`; every answer is recorded (errors of the dying server are not answers). */
function callLoop(client: Client, userId: string, prefix: string, answers: Answer[]): { stop(): void; done: Promise<void> } {
  let running = true;
  const done = (async () => {
    for (let n = 0; running; n++) {
      const message = `${prefix}-${n}`;
      // Every third call waits a little: its `running` row is written before it ends.
      const delayMs = n % 3 === 2 ? 1 + Math.floor(Math.random() * 40) : 0;
      try {
        const result = await client.callTool({ name: 'tool_echo', arguments: { message, delayMs } });
        answers.push({
          message,
          userId,
          echoed: (result.structuredContent as { message?: unknown } | undefined)?.message,
          isError: !!result.isError,
        });
      } catch {
        return; // the server died (or closed the connection): no answer, and the loop ends
      }
    }
  })();
  return { stop: () => (running = false), done };
}

async function query<T>(pg: PgClient, sql: string, params: unknown[] = []): Promise<T[]> {
  return (await pg.query(sql, params)).rows as T[];
}

describe('kill -9 under a load of MCP tool calls (built server, PostgreSQL)', () => {
  let fault: FaultServer | undefined;
  let pg: PgClient | undefined;
  afterAll(async () => {
    await pg?.end();
    await fault?.cleanup();
  });

  it('every answered call has its completed row and audit record; cut calls are failed by the sweeper; the chain verifies', async () => {
    fault = await startFaultServer((database) => database.url, {
      TOOLS_DEFAULT_TIMEOUT_MS: String(TIMEOUT_MS),
      TOOLS_QUEUE_LEASE_GRACE_MS: String(LEASE_GRACE_MS),
      TOOLS_QUEUE_POLL_MS: '200',
    });
    pg = new PgClient({ connectionString: fault.database.url });
    await pg.connect();
    await unlimitEcho(fault.server.baseUrl, await loginAdmin(fault.server.baseUrl));

    const answers: Answer[] = [];
    const perRound: Array<{ answered: number; runningAtKill: number }> = [];
    for (let round = 0; round < ROUNDS; round++) {
      const { baseUrl } = fault.server;
      const { token, userId: adminId } = await login({ baseUrl }, ADMIN_EMAIL);
      const url = `${baseUrl}/api/v1/mcp`;
      const clients = await Promise.all(Array.from({ length: CLIENTS + LONG_CALLS }, () => connectHttp(url, token, 'modern')));
      const before = answers.length;
      const loops = clients.slice(0, CLIENTS).map(({ client }, c) => callLoop(client, adminId, `r${round}-c${c}`, answers));
      // Calls that are still running when the process dies: their rows are `running` in the database.
      const long = clients
        .slice(CLIENTS)
        .map(({ client }, i) =>
          client.callTool({ name: 'tool_echo', arguments: { message: `r${round}-long-${i}`, delayMs: 60_000 } }).catch(() => null),
        );
      await eventually(
        async () =>
          (
            await query<{ n: number }>(
              pg!,
              `SELECT count(*)::int AS n FROM tool_executions WHERE status = 'running' AND input->>'message' LIKE $1`,
              [`r${round}-long-%`],
            )
          )[0].n === LONG_CALLS,
        20_000,
      );
      // A random point of the load.
      await sleep(200 + Math.floor(Math.random() * 1_500));
      fault.server.child.kill('SIGKILL');
      await fault.server.exited;
      for (const loop of loops) loop.stop();
      await Promise.all([...loops.map((loop) => loop.done), ...long]);
      perRound.push({ answered: answers.length - before, runningAtKill: LONG_CALLS });
      await Promise.all(clients.map(({ client }) => client.close().catch(() => undefined)));
      await fault.restart();
    }
    console.log(`kill -9 under load: answered per round ${perRound.map((r) => r.answered).join(', ')}`);
    expect(perRound.every((r) => r.answered > 0)).toBe(true);

    // After the restart the sweeper fails the calls the kills cut (their lease expires), and nothing stays running.
    await eventually(
      async () =>
        (await query<{ n: number }>(pg!, `SELECT count(*)::int AS n FROM tool_executions WHERE status IN ('running', 'pending')`))[0].n ===
        0,
      30_000,
    );

    // Every answer is the caller's own, completed.
    expect(answers.filter((a) => a.isError || a.echoed !== a.message)).toEqual([]);

    // Every answered call: exactly one row, completed, with exactly one success audit record naming it.
    const rows = await query<{
      id: string;
      message: string;
      status: string;
      user_id: string;
      error: { code: string } | null;
      audits: string[];
    }>(
      pg,
      `SELECT e.id, e.input->>'message' AS message, e.status, e.user_id, e.error,
              coalesce(array_agg(a.result) FILTER (WHERE a.id IS NOT NULL), '{}') AS audits
         FROM tool_executions e
         LEFT JOIN audit_logs a ON a.action = 'tool.execute' AND a.details->>'executionId' = e.id
        GROUP BY e.id`,
    );
    const byMessage = new Map<string, typeof rows>();
    for (const row of rows) byMessage.set(row.message, [...(byMessage.get(row.message) ?? []), row]);
    const unrecorded = answers.filter((answer) => {
      const recorded = byMessage.get(answer.message) ?? [];
      return !(
        recorded.length === 1 &&
        recorded[0].status === 'completed' &&
        recorded[0].user_id === answer.userId &&
        recorded[0].audits.length === 1 &&
        recorded[0].audits[0] === 'success'
      );
    });
    expect(unrecorded).toEqual([]);

    // Every row in the database (answered or not) is final and has exactly one audit record.
    expect(rows.filter((row) => row.audits.length !== 1 || !['completed', 'failed'].includes(row.status))).toEqual([]);
    // The calls cut mid-run were failed by the sweeper as interrupted.
    const cut = rows.filter((row) => row.message.includes('-long-'));
    expect(cut.map((row) => ({ status: row.status, code: row.error?.code, audit: row.audits[0] }))).toEqual(
      Array.from({ length: ROUNDS * LONG_CALLS }, () => ({ status: 'failed', code: 'INTERRUPTED', audit: 'failure' })),
    );

    // The audit chain verifies (hashes, links and keyed MACs), across every kill.
    const verify = await http(fault.server.baseUrl, 'GET', '/api/v1/admin/audit-logs/verify', {
      token: await loginAdmin(fault.server.baseUrl),
    });
    expect({ status: verify.status, valid: verify.body.valid, firstInvalid: verify.body.firstInvalid }).toEqual({
      status: 200,
      valid: true,
      firstInvalid: null,
    });
    expect(verify.body.checked).toBeGreaterThanOrEqual(rows.length);
  });

  it('concurrent calls of different users: every answer is its caller own, and so is every row', async () => {
    const { baseUrl } = fault!.server;
    const url = `${baseUrl}/api/v1/mcp`;
    const users = await Promise.all(
      ['kill-alice@example.com', 'kill-bob@example.com', 'kill-carol@example.com'].map((email) => signUp({ baseUrl }, email)),
    );
    const clients = await Promise.all(users.map((user) => connectHttp(url, user.token, 'modern')));
    const calls = users.flatMap((user, u) =>
      Array.from({ length: 30 }, (_, n) => ({ user, client: clients[u].client, message: `${user.userId}-${n}` })),
    );
    // All at once, interleaved across the users.
    const results = await Promise.all(
      calls.map(({ client, message }, i) => client.callTool({ name: 'tool_echo', arguments: { message, delayMs: i % 4 === 0 ? 5 : 0 } })),
    );
    expect(results.map((result) => (result.structuredContent as { message: string }).message)).toEqual(calls.map((call) => call.message));
    const rows = await query<{ message: string; user_id: string }>(
      pg!,
      `SELECT input->>'message' AS message, user_id FROM tool_executions WHERE user_id = ANY($1)`,
      [users.map((user) => user.userId)],
    );
    const ownerOf = new Map(rows.map((row) => [row.message, row.user_id]));
    expect(calls.filter((call) => ownerOf.get(call.message) !== call.user.userId)).toEqual([]);
    expect(rows).toHaveLength(calls.length);
    await Promise.all(clients.map(({ client }) => client.close()));
  });
});
