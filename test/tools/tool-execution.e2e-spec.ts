import { DataSource } from 'typeorm';
import { AuditKeyring } from '@app/audit';
import { SessionActivityService } from '@app/sessions';
import { appendAsAnotherReplica } from '../support/audit-replica';
import { DATABASE_KINDS, http, startTestApp, TestApp } from '../support/test-app';
import { TestToolProvider, TestToolsModule } from './test-tools.module';
import {
  ADMIN_EMAIL,
  auditFor,
  Caller,
  execute,
  executionRow,
  login,
  signUp,
  toolsEnv,
  updateTool,
  waitForExecution,
} from './tools-test-kit';

const MAX_TIMEOUT_MS = 5_000;

describe.each(DATABASE_KINDS)('tool execution pipeline (%s)', (kind) => {
  let t: TestApp;
  let db: DataSource;
  let tools: TestToolProvider;
  let admin: Caller;
  let alice: Caller;
  let bob: Caller;

  beforeAll(async () => {
    t = await startTestApp(kind, {
      env: toolsEnv({ TOOLS_MAX_TIMEOUT_MS: String(MAX_TIMEOUT_MS), TOOLS_DEFAULT_TIMEOUT_MS: '3000', TOOLS_QUEUE_POLL_MS: '50' }),
      extraModules: [TestToolsModule],
    });
    db = t.app.get(DataSource);
    tools = t.app.get(TestToolProvider);
    admin = await login(t, ADMIN_EMAIL);
    alice = await signUp(t, 'alice.tools@example.com');
    bob = await signUp(t, 'bob.tools@example.com');
  });
  afterAll(() => t?.close());

  /** The counters are written behind; flush them first. */
  const sessionCounters = async (sessionId: string) => {
    await t.app.get(SessionActivityService).flush();
    return (await db.query(`SELECT tool_executions, errors FROM sessions WHERE id = $1`, [sessionId]))[0] as {
      tool_executions: number;
      errors: number;
    };
  };

  describe('a call that completes', () => {
    it("answers with the contract's body and leaves an execution row, an audit entry and session counts", async () => {
      const before = await sessionCounters(alice.sessionId);
      const res = await execute(t, alice, 'tool_echo', { parameters: { message: 'hello' } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ toolId: 'tool_echo', status: 'completed', result: { message: 'hello' }, async: false });
      expect(res.body.executionId).toMatch(/^exe_/);
      expect(typeof res.body.metrics.durationMs).toBe('number');
      expect(res.body.metrics).toMatchObject({ timeoutMs: 3000, attempts: 1 });
      expect(res.body.error).toBeUndefined();
      // The tool's own budget, not the general one.
      expect(res.headers.get('x-ratelimit-limit')).toBe('600');
      expect(res.headers.get('x-ratelimit-remaining')).toBe('599');

      const row = await executionRow(db, res.body.executionId);
      expect(row).toMatchObject({
        tool_id: 'tool_echo',
        user_id: alice.userId,
        session_id: alice.sessionId,
        status: 'completed',
        async: false,
        input: { message: 'hello' },
        result: { message: 'hello' },
        error: null,
        attempts: 1,
      });
      const audit = await auditFor(db, res.body.executionId);
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ result: 'success', user_id: alice.userId, details: { status: 'completed' } });
      const after = await sessionCounters(alice.sessionId);
      expect(after.tool_executions).toBe(before.tool_executions + 1);
      expect(after.errors).toBe(before.errors);
    });

    it('counts executions in Prometheus', async () => {
      const metrics = await http(t.baseUrl, 'GET', '/api/v1/metrics', { token: admin.token });
      expect(metrics.text).toMatch(/tool_executions_total\{tool="tool_echo",status="completed"\} [1-9]/);
      expect(metrics.text).toMatch(/tool_execution_duration_seconds_count\{tool="tool_echo"\} [1-9]/);
    });

    it('records calls that finish together (one group commit) each with its own row and audit entry, the chain intact', async () => {
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) => execute(t, i % 2 ? alice : bob, 'tool_echo', { parameters: { message: `together ${i}` } })),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(30).fill(200));
      for (const [i, answer] of answers.entries()) {
        // Answered only once durable: the row and the audit entry are already there.
        expect(await executionRow(db, answer.body.executionId)).toMatchObject({
          status: 'completed',
          result: { message: `together ${i}` },
        });
        expect(await auditFor(db, answer.body.executionId)).toEqual([
          expect.objectContaining({ result: 'success', user_id: (i % 2 ? alice : bob).userId }),
        ]);
      }
      const verify = await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs/verify', { token: admin.token });
      expect(verify.body).toMatchObject({ valid: true, firstInvalid: null });
    });
  });

  it("links a group commit's records after rows another replica appended since this process last wrote", async () => {
    // This process's head guess is set by a first call; then another replica appends under the chain lock.
    expect((await execute(t, alice, 'tool_echo', { parameters: { message: 'before' } })).status).toBe(200);
    await appendAsAnotherReplica(db, t.app.get(AuditKeyring).macKey, 'test.other_replica');
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, i) => execute(t, alice, 'tool_echo', { parameters: { message: `after ${i}` } })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
    for (const answer of answers) expect(await auditFor(db, answer.body.executionId)).toHaveLength(1);
    const verify = await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs/verify', { token: admin.token });
    expect(verify.body).toMatchObject({ valid: true, firstInvalid: null });
  });

  it('stores each column of a call as the answer states it (instants to the millisecond, JSON values, NULLs), its audit record chained', async () => {
    const message = 'quotes " and \' , backslash \\ , unicode é ü 漢字 😀, a newline\n and {"json": [1, 2]} as text';
    const res = await execute(t, alice, 'tool_echo', { parameters: { message }, context: { requestId: 'fidelity-1' } });
    expect(res.status).toBe(200);
    const row = (await executionRow(db, res.body.executionId)) as unknown as Record<string, unknown>;
    expect(row).toMatchObject({
      id: res.body.executionId,
      tool_id: 'tool_echo',
      user_id: alice.userId,
      session_id: alice.sessionId,
      request_id: 'fidelity-1',
      status: 'completed',
      async: false,
      input: { message },
      result: { message },
      error: null,
      timeout_ms: 3000,
      attempts: 1,
      locked_by: null,
      locked_until: null,
      payload: null,
      caller_permissions: null,
    });
    expect(typeof row.request_hash).toBe('string');
    expect(row.duration_ms).toBe(res.body.metrics.durationMs);
    expect((row.created_at as Date).toISOString()).toBe(res.body.createdAt);
    // A synchronous call starts when it is created; the answer says what the row (and every later read) says.
    expect(row.started_at).toEqual(row.created_at);
    expect((row.started_at as Date).toISOString()).toBe(res.body.startedAt);
    const read = await http(t.baseUrl, 'GET', `/api/v1/tools/executions/${res.body.executionId}`, { token: alice.token });
    expect(read.status).toBe(200);
    expect({ startedAt: read.body.startedAt, finishedAt: read.body.finishedAt }).toEqual({
      startedAt: res.body.startedAt,
      finishedAt: res.body.finishedAt,
    });
    expect((row.finished_at as Date).toISOString()).toBe(res.body.finishedAt);
    const [record] = await db.query(
      `SELECT details, metadata FROM audit_logs WHERE action = 'tool.execute' AND details->>'executionId' = $1`,
      [res.body.executionId],
    );
    expect(record).toEqual({
      details: {
        executionId: res.body.executionId,
        status: 'completed',
        durationMs: res.body.metrics.durationMs,
        async: false,
        attempts: 1,
      },
      metadata: { sessionId: alice.sessionId, requestId: 'fidelity-1' },
    });
    const verify = await http(t.baseUrl, 'GET', '/api/v1/admin/audit-logs/verify', { token: admin.token });
    expect(verify.body).toMatchObject({ valid: true, firstInvalid: null });
  });

  describe('refusals', () => {
    it('404 for an unknown tool', async () => {
      const res = await execute(t, alice, 'tool_nonexistent', { parameters: {} });
      expect(res.status).toBe(404);
      expect(res.body.error).toBe('NOT_FOUND');
    });

    it('403 when the caller lacks a permission the tool requires (audited)', async () => {
      expect((await updateTool(t, admin, 'tool_echo', { permissions: ['tools:execute', 'admin:tools:write'] })).status).toBe(200);
      try {
        const res = await execute(t, alice, 'tool_echo', { parameters: { message: 'x' } });
        expect(res.status).toBe(403);
        expect(res.body.error).toBe('FORBIDDEN');
        expect(res.body.message).toContain('admin:tools:write');
        // The admin holds it.
        expect((await execute(t, admin, 'tool_echo', { parameters: { message: 'x' } })).body.status).toBe('completed');
        const audit = await db.query(
          `SELECT result, details FROM audit_logs WHERE action = 'tool.execute' AND user_id = $1 AND details->>'reason' = 'FORBIDDEN'`,
          [alice.userId],
        );
        expect(audit).toEqual([{ result: 'failure', details: { status: 'refused', reason: 'FORBIDDEN', missing: ['admin:tools:write'] } }]);
      } finally {
        await updateTool(t, admin, 'tool_echo', { permissions: null });
      }
    });

    it('400 naming each bad parameter, before anything runs', async () => {
      const rows = Number((await db.query(`SELECT count(*) AS n FROM tool_executions`))[0].n);
      const res = await execute(t, alice, 'tool_echo', { parameters: { message: 42, shout: true } });
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('VALIDATION_ERROR');
      expect(res.body.details.map((d: { field: string }) => d.field).sort()).toEqual(['parameters.message', 'parameters.shout']);
      const missing = await execute(t, alice, 'tool_echo', { parameters: {} });
      expect(missing.body.details).toEqual([{ field: 'parameters.message', message: 'is required', code: 'required' }]);
      // The envelope itself is checked too.
      const noParameters = await execute(t, alice, 'tool_echo', {});
      expect(noParameters.status).toBe(400);
      expect(noParameters.body.details.map((d: { field: string }) => d.field)).toContain('parameters');
      const badOptions = await execute(t, alice, 'tool_echo', { parameters: { message: 'x' }, options: { timeout: -1, async: 'yes' } });
      expect(badOptions.body.details.map((d: { field: string }) => d.field).sort()).toEqual(['options.async', 'options.timeout']);
      expect(Number((await db.query(`SELECT count(*) AS n FROM tool_executions`))[0].n)).toBe(rows);
    });

    it('429 on the 61st call in a minute, per user and per tool, with the rate-limit headers', async () => {
      expect((await updateTool(t, admin, 'tool_echo', { rateLimit: { requests: 60, window: '1m' } })).status).toBe(200);
      const carol = await signUp(t, 'carol.tools@example.com');
      try {
        for (let i = 1; i <= 60; i++) {
          const res = await execute(t, carol, 'tool_echo', { parameters: { message: `call ${i}` } });
          expect({ i, status: res.status }).toEqual({ i, status: 200 });
          expect(res.headers.get('x-ratelimit-remaining')).toBe(String(60 - i));
        }
        const refused = await execute(t, carol, 'tool_echo', { parameters: { message: 'call 61' } });
        expect(refused.status).toBe(429);
        expect(refused.body.error).toBe('RATE_LIMIT_EXCEEDED');
        expect(refused.headers.get('x-ratelimit-limit')).toBe('60');
        expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
        const reset = Number(refused.headers.get('x-ratelimit-reset'));
        expect(reset).toBeGreaterThan(0);
        expect(reset).toBeLessThanOrEqual(60);
        expect(refused.headers.get('retry-after')).toBe(String(reset));
        // Another user, another tool: their own budgets.
        expect((await execute(t, bob, 'tool_echo', { parameters: { message: 'mine' } })).status).toBe(200);
        expect((await execute(t, carol, 'tool_sleep', { parameters: { ms: 0 } })).status).toBe(200);
        const rows = await db.query(`SELECT count(*)::int AS n FROM tool_executions WHERE user_id = $1 AND tool_id = 'tool_echo'`, [
          carol.userId,
        ]);
        expect(rows[0].n).toBe(60);
      } finally {
        await updateTool(t, admin, 'tool_echo', { rateLimit: null });
      }
    });
  });

  describe('calls that fail answer 200 with status failed', () => {
    it('a slow call times out, its work is stopped, and the record says so', async () => {
      const res = await execute(t, alice, 'tool_sleep', { parameters: { ms: 30_000 }, options: { timeout: 300 } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status: 'failed', result: null, error: { code: 'TIMEOUT' } });
      expect(res.body.error.message).toMatch(/300 ms/);
      const call = tools.sleeps[tools.sleeps.length - 1];
      expect(call).toMatchObject({ ms: 30_000, abortObserved: true, abortReason: 'TIMEOUT', finished: false });
      const row = await executionRow(db, res.body.executionId);
      expect(row).toMatchObject({ status: 'failed', error: { code: 'TIMEOUT' } });
      expect(row!.duration_ms).toBeGreaterThanOrEqual(290);
      const audit = await auditFor(db, res.body.executionId);
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ result: 'failure', details: { status: 'failed', errorCode: 'TIMEOUT' } });
    });

    it('a tool that ignores its signal still answers at the deadline', async () => {
      const res = await execute(t, alice, 'tool_stubborn', { parameters: { ms: 3_000 }, options: { timeout: 200 } });
      expect(res.body).toMatchObject({ status: 'failed', error: { code: 'TIMEOUT' } });
      // Answered while the tool was still running: the pipeline did not wait for it to give up.
      expect(tools.stubborn[tools.stubborn.length - 1]).toEqual({ ms: 3_000, finished: false });
    });

    it('the built-in echo tool stops its wait when the call times out', async () => {
      const res = await execute(t, alice, 'tool_echo', { parameters: { message: 'late', delayMs: 60_000 }, options: { timeout: 200 } });
      expect(res.body).toMatchObject({ status: 'failed', error: { code: 'TIMEOUT' } });
    });

    it('caps the timeout at the configured maximum', async () => {
      const res = await execute(t, alice, 'tool_echo', { parameters: { message: 'x' }, options: { timeout: 10 * MAX_TIMEOUT_MS } });
      expect(res.body.metrics.timeoutMs).toBe(MAX_TIMEOUT_MS);
    });

    it('an unexpected fault is a failed execution with a generic message (nothing internal leaks) and counts as a session error', async () => {
      const before = await sessionCounters(alice.sessionId);
      const res = await execute(t, alice, 'tool_crash', { parameters: {} });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status: 'failed', error: { code: 'TOOL_FAILED', message: 'The tool failed unexpectedly' } });
      expect(res.text).not.toMatch(/ECONNREFUSED|secret\.js|10\.1\.2\.3|stack/);
      const after = await sessionCounters(alice.sessionId);
      expect(after).toEqual({ tool_executions: before.tool_executions + 1, errors: before.errors + 1 });
    });

    it('output that breaks the output schema fails the call', async () => {
      const res = await execute(t, alice, 'tool_bad_output', { parameters: {} });
      expect(res.body).toMatchObject({ status: 'failed', result: null, error: { code: 'INVALID_OUTPUT' } });
      expect((await executionRow(db, res.body.executionId))!.result).toBeNull();
    });
  });

  describe('idempotency (context.requestId)', () => {
    it('runs once and returns the same execution to a repeat', async () => {
      const calls = tools.sleeps.length;
      const body = { parameters: { ms: 1 }, context: { requestId: 'order-42' } };
      const first = await execute(t, alice, 'tool_sleep', body);
      const second = await execute(t, alice, 'tool_sleep', body);
      expect(first.body.status).toBe('completed');
      expect(second.status).toBe(200);
      expect(second.body).toEqual(
        expect.objectContaining({ executionId: first.body.executionId, status: 'completed', result: { slept: 1 } }),
      );
      expect(tools.sleeps.length).toBe(calls + 1);
      const rows = await db.query(`SELECT id FROM tool_executions WHERE user_id = $1 AND request_id = 'order-42'`, [alice.userId]);
      expect(rows).toHaveLength(1);
      expect(await auditFor(db, first.body.executionId)).toHaveLength(1);
      // The key is the caller's: another user may use the same one.
      const bobs = await execute(t, bob, 'tool_sleep', body);
      expect(bobs.body.executionId).not.toBe(first.body.executionId);
    });

    it('runs once under concurrent repeats', async () => {
      const calls = tools.sleeps.length;
      const body = { parameters: { ms: 200 }, context: { requestId: 'burst-1' } };
      const answers = await Promise.all(Array.from({ length: 6 }, () => execute(t, alice, 'tool_sleep', body)));
      expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
      expect(new Set(answers.map((a) => a.body.executionId)).size).toBe(1);
      expect(tools.sleeps.length).toBe(calls + 1);
      const done = await waitForExecution(t, alice, answers[0].body.executionId);
      expect(done.body.status).toBe('completed');
    });

    it('refuses a requestId reused for a different call with 409', async () => {
      await execute(t, alice, 'tool_echo', { parameters: { message: 'a' }, context: { requestId: 'reuse-me' } });
      const different = await execute(t, alice, 'tool_echo', { parameters: { message: 'b' }, context: { requestId: 'reuse-me' } });
      expect(different.status).toBe(409);
      expect(different.body.error).toBe('IDEMPOTENCY_KEY_REUSED');
      const otherTool = await execute(t, alice, 'tool_sleep', { parameters: { ms: 0 }, context: { requestId: 'reuse-me' } });
      expect(otherTool.status).toBe(409);
    });
  });

  describe('context.sessionId', () => {
    it("counts the call in another of the caller's own active sessions", async () => {
      const other = await login(t, 'alice.tools@example.com');
      const before = await sessionCounters(other.sessionId);
      const res = await execute(t, alice, 'tool_echo', { parameters: { message: 'x' }, context: { sessionId: other.sessionId } });
      expect(res.status).toBe(200);
      expect(res.body.sessionId).toBe(other.sessionId);
      expect((await sessionCounters(other.sessionId)).tool_executions).toBe(before.tool_executions + 1);
    });

    it("refuses someone else's session, an unknown one and an ended one with 400 INVALID_SESSION", async () => {
      const ended = await login(t, 'alice.tools@example.com');
      expect((await http(t.baseUrl, 'POST', '/api/v1/auth/logout', { token: ended.token, body: {} })).status).toBeLessThan(300);
      for (const sessionId of [bob.sessionId, 'ses_doesnotexist', ended.sessionId]) {
        const res = await execute(t, alice, 'tool_echo', { parameters: { message: 'x' }, context: { sessionId } });
        expect({ sessionId, status: res.status, error: res.body.error }).toEqual({ sessionId, status: 400, error: 'INVALID_SESSION' });
        expect(res.body.details[0].field).toBe('context.sessionId');
      }
    });
  });

  describe('async calls and GET /tools/executions/{id}', () => {
    it('answers pending at once, then completes from the queue', async () => {
      const res = await execute(t, alice, 'tool_sleep', { parameters: { ms: 100 }, options: { async: true } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status: 'pending', result: null, async: true, metrics: { durationMs: null, attempts: 0 } });
      const done = await waitForExecution(t, alice, res.body.executionId);
      expect(done.body).toMatchObject({ status: 'completed', result: { slept: 100 }, metrics: { attempts: 1 } });
      expect(done.body.metrics.durationMs).toBeGreaterThanOrEqual(90);
      const row = await db.query(`SELECT payload, input FROM tool_executions WHERE id = $1`, [res.body.executionId]);
      expect(row[0]).toEqual({ payload: null, input: { ms: 100 } });
      expect(await auditFor(db, res.body.executionId)).toHaveLength(1);
    });

    it('an async call that times out fails with the same clear error', async () => {
      const res = await execute(t, alice, 'tool_sleep', { parameters: { ms: 30_000 }, options: { async: true, timeout: 200 } });
      const done = await waitForExecution(t, alice, res.body.executionId);
      expect(done.body).toMatchObject({ status: 'failed', error: { code: 'TIMEOUT' } });
    });

    it('shows an execution to its owner and to admins only', async () => {
      const res = await execute(t, alice, 'tool_echo', { parameters: { message: 'private' } });
      const path = `/api/v1/tools/executions/${res.body.executionId}`;
      const own = await http(t.baseUrl, 'GET', path, { token: alice.token });
      expect(own.status).toBe(200);
      expect(own.body).toMatchObject({ executionId: res.body.executionId, status: 'completed', result: { message: 'private' } });
      expect((await http(t.baseUrl, 'GET', path, { token: admin.token })).status).toBe(200);
      const other = await http(t.baseUrl, 'GET', path, { token: bob.token });
      expect(other.status).toBe(404);
      expect(other.body.error).toBe('NOT_FOUND');
      expect((await http(t.baseUrl, 'GET', '/api/v1/tools/executions/exe_nope', { token: alice.token })).status).toBe(404);
      expect((await http(t.baseUrl, 'GET', path)).status).toBe(401);
    });
  });

  describe('bookkeeping', () => {
    it('left an execution row and an audit entry for every call that ran', async () => {
      const [{ n }] = await db.query(`SELECT count(*)::int AS n FROM tool_executions WHERE status IN ('completed', 'failed')`);
      expect(n).toBeGreaterThan(70);
      const missing = await db.query(
        `SELECT e.id FROM tool_executions e
          WHERE e.status IN ('completed', 'failed')
            AND NOT EXISTS (SELECT 1 FROM audit_logs a WHERE a.action = 'tool.execute' AND a.details->>'executionId' = e.id)`,
      );
      expect(missing).toEqual([]);
      const audited = await db.query(
        `SELECT a.details->>'executionId' AS id FROM audit_logs a
          WHERE a.action = 'tool.execute' AND a.details ? 'executionId'
            AND NOT EXISTS (SELECT 1 FROM tool_executions e WHERE e.id = a.details->>'executionId')`,
      );
      expect(audited).toEqual([]);
    });
  });
});
