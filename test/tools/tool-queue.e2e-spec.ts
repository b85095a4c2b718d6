import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { waitFor } from '../support/polling';
import { DATABASE_KINDS, startTestApp, TestApp } from '../support/test-app';
import { TestToolProvider, TestToolsModule } from './test-tools.module';
import { auditFor, Caller, execute, executionRow, signUp, toolsEnv, waitForExecution } from './tools-test-kit';

const MAX_ATTEMPTS = 3;

describe.each(DATABASE_KINDS)('durable queue of async executions (%s)', (kind) => {
  // Tokens must outlive a restart here, so the signing key is fixed instead of generated per process.
  const env = (extra: Record<string, string> = {}) =>
    toolsEnv({ JWT_SECRET: randomBytes(32).toString('hex'), TOOLS_QUEUE_MAX_ATTEMPTS: String(MAX_ATTEMPTS), ...extra });
  let first: TestApp;
  let second: TestApp | undefined;
  let alice: Caller;
  let secret: Record<string, string>;

  beforeAll(async () => {
    secret = env();
    // The accepting process does not run queued work at all.
    first = await startTestApp(kind, { env: { ...secret, TOOLS_QUEUE_ENABLED: 'false' }, extraModules: [TestToolsModule] });
    alice = await signUp(first, 'queue.alice@example.com');
  });
  afterAll(async () => {
    await second?.stop();
    await first?.close();
  });

  it('completes an async call after the process that accepted it was restarted', async () => {
    const accepted = await execute(first, alice, 'tool_sleep', {
      parameters: { ms: 20 },
      options: { async: true },
      context: { requestId: 'survive-1' },
    });
    expect(accepted.status).toBe(200);
    expect(accepted.body.status).toBe('pending');
    const id = accepted.body.executionId as string;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await executionRow(first.app.get(DataSource), id))!.status).toBe('pending');
    await first.stop();

    second = await startTestApp(kind, { env: { ...secret, TOOLS_QUEUE_POLL_MS: '50' }, extraModules: [TestToolsModule], reuse: first });
    const done = await waitForExecution(second, alice, id);
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ executionId: id, status: 'completed', result: { slept: 20 }, metrics: { attempts: 1 } });
    expect(second.app.get(TestToolProvider).sleeps).toHaveLength(1);
    const db = second.app.get(DataSource);
    expect(await auditFor(db, id)).toEqual([expect.objectContaining({ result: 'success', user_id: alice.userId })]);
    // The idempotency key still holds across the restart.
    const again = await execute(second, alice, 'tool_sleep', {
      parameters: { ms: 20 },
      options: { async: true },
      context: { requestId: 'survive-1' },
    });
    expect(again.body.executionId).toBe(id);
    expect(second.app.get(TestToolProvider).sleeps).toHaveLength(1);
  });

  describe('rows left behind by a process that died', () => {
    let db: DataSource;
    let insert: (fields: Record<string, unknown>) => Promise<string>;

    beforeAll(() => {
      db = second!.app.get(DataSource);
      insert = async (fields) => {
        const id = `exe_test${randomBytes(6).toString('hex')}`;
        const row: Record<string, unknown> = {
          id,
          tool_id: 'tool_sleep',
          user_id: alice.userId,
          session_id: alice.sessionId,
          status: 'running',
          async: true,
          input: JSON.stringify({ ms: 5 }),
          payload: JSON.stringify({ ms: 5 }),
          timeout_ms: 1000,
          started_at: new Date(Date.now() - 120_000),
          attempts: 1,
          locked_by: 'a-process-that-died',
          locked_until: new Date(Date.now() - 60_000),
          ...fields,
        };
        const columns = Object.keys(row);
        await db.query(
          `INSERT INTO tool_executions (${columns.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')})`,
          Object.values(row),
        );
        return id;
      };
    });

    it('retries an async call whose lease expired, counting the attempt', async () => {
      const id = await insert({});
      const done = await waitForExecution(second!, alice, id);
      expect(done.body).toMatchObject({ status: 'completed', result: { slept: 5 }, metrics: { attempts: 2 } });
      expect(await auditFor(db, id)).toHaveLength(1);
    });

    it('fails an async call that ran out of attempts, audited', async () => {
      const id = await insert({ attempts: MAX_ATTEMPTS });
      const done = await waitForExecution(second!, alice, id);
      expect(done.body).toMatchObject({ status: 'failed', error: { code: 'ATTEMPTS_EXHAUSTED' }, metrics: { attempts: MAX_ATTEMPTS } });
      expect(await auditFor(db, id)).toEqual([expect.objectContaining({ result: 'failure' })]);
    });

    it('fails a synchronous call whose process died mid-run (its caller is gone; never re-run)', async () => {
      const calls = second!.app.get(TestToolProvider).sleeps.length;
      const id = await insert({ async: false, payload: null });
      const done = await waitForExecution(second!, alice, id);
      expect(done.body).toMatchObject({ status: 'failed', error: { code: 'INTERRUPTED' }, metrics: { attempts: 1 } });
      expect(second!.app.get(TestToolProvider).sleeps.length).toBe(calls);
      expect(await auditFor(db, id)).toHaveLength(1);
    });
  });

  it('hands running work back to the queue on shutdown, and the next process finishes it', async () => {
    const accepted = await execute(second!, alice, 'tool_sleep', { parameters: { ms: 30_000 }, options: { async: true, timeout: 60_000 } });
    const id = accepted.body.executionId as string;
    const provider = second!.app.get(TestToolProvider);
    await waitFor('the queue to start the 30 s sleep', () => provider.sleeps.some((call) => call.ms === 30_000), 20_000, 20);
    expect((await executionRow(second!.app.get(DataSource), id))!.status).toBe('running');
    await second!.stop();
    expect(provider.sleeps.find((call) => call.ms === 30_000)).toMatchObject({ abortObserved: true, finished: false });

    const third = await startTestApp(kind, {
      env: { ...secret, TOOLS_QUEUE_ENABLED: 'false' },
      extraModules: [TestToolsModule],
      reuse: first,
    });
    second = third;
    const row = await executionRow(third.app.get(DataSource), id);
    expect(row).toMatchObject({ status: 'pending', attempts: 1 });
    expect(await auditFor(third.app.get(DataSource), id)).toEqual([]);
  });
});
