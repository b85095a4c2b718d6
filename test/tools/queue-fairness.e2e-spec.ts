import { DataSource } from 'typeorm';
import { DATABASE_KINDS, startTestApp, TestApp } from '../support/test-app';
import { Caller, execute, signUp, toolsEnv, waitForExecution } from './tools-test-kit';

const CONCURRENCY = 2;
const MAX_PENDING = 10;
/** Carol's calls: a 3 s call could end while a loaded machine was still filling her line (CI saw 14 accepted). */
const CAROL_DELAY_MS = 20_000;

/** The async queue shares its workers between users and caps what one user may have waiting. */
describe.each(DATABASE_KINDS)('async queue fairness (%s)', (kind) => {
  let t: TestApp;
  let db: DataSource;
  let alice: Caller;
  let bob: Caller;
  let carol: Caller;

  beforeAll(async () => {
    t = await startTestApp(kind, {
      env: toolsEnv({
        TOOLS_QUEUE_CONCURRENCY: String(CONCURRENCY),
        TOOLS_QUEUE_POLL_MS: '50',
        TOOLS_QUEUE_MAX_PENDING_PER_USER: String(MAX_PENDING),
      }),
    });
    db = t.app.get(DataSource);
    [alice, bob, carol] = [
      await signUp(t, `fair.alice.${kind}@example.com`),
      await signUp(t, `fair.bob.${kind}@example.com`),
      await signUp(t, `fair.carol.${kind}@example.com`),
    ];
  });
  afterAll(() => t?.close());

  const queueEcho = (caller: Caller, delayMs: number, requestId?: string) =>
    execute(t, caller, 'tool_echo', {
      parameters: { message: 'queued', delayMs },
      options: { async: true },
      ...(requestId ? { context: { requestId } } : {}),
    });

  it("runs another user's trivial call before one user's backlog drains", async () => {
    const backlog: string[] = [];
    for (let i = 0; i < MAX_PENDING; i += 1) {
      const res = await queueEcho(alice, 1_500);
      expect(res.status).toBe(200);
      backlog.push(res.body.executionId);
    }
    const trivial = await queueEcho(bob, 0);
    expect(trivial.status).toBe(200);
    const done = await waitForExecution(t, bob, trivial.body.executionId, 30_000);
    expect(done.body.status).toBe('completed');

    const [bobRow] = await db.query(`SELECT created_at, started_at, finished_at FROM tool_executions WHERE id = $1`, [
      trivial.body.executionId,
    ]);
    const [aliceBefore] = await db.query(
      `SELECT count(*) FILTER (WHERE started_at >= $2 AND started_at < $3)::int AS started_while_bob_waited,
              count(*) FILTER (WHERE status = 'completed')::int AS completed
         FROM tool_executions WHERE id = ANY($1::text[])`,
      [backlog, bobRow.created_at, bobRow.started_at],
    );
    // Once Bob's call is queued, the next free worker takes it: Alice can start at most the claims
    // already in flight when it arrived (one per worker), however long her backlog took to submit.
    expect(aliceBefore.started_while_bob_waited).toBeLessThanOrEqual(CONCURRENCY);
    expect(aliceBefore.completed).toBeLessThan(backlog.length);
    for (const id of backlog) expect((await waitForExecution(t, alice, id, 60_000)).body.status).toBe('completed');
  });

  it('refuses a user with too many calls waiting (429, Error body, Retry-After), storing nothing, and nobody else', async () => {
    // Long enough that none of Carol's calls ends while the line is filled, however loaded the machine.
    const first = await queueEcho(carol, CAROL_DELAY_MS, 'carol-0');
    expect(first.status).toBe(200);
    let accepted = 1;
    let refused: Awaited<ReturnType<typeof queueEcho>> | undefined;
    while (!refused && accepted < MAX_PENDING + CONCURRENCY + 5) {
      const res = await queueEcho(carol, CAROL_DELAY_MS);
      if (res.status === 429) refused = res;
      else {
        expect(res.status).toBe(200);
        accepted += 1;
      }
    }
    expect(refused).toBeDefined();
    // At most CONCURRENCY of Carol's calls can have left the waiting line meanwhile.
    expect(accepted).toBeGreaterThanOrEqual(MAX_PENDING);
    expect(accepted).toBeLessThanOrEqual(MAX_PENDING + CONCURRENCY);
    expect(refused!.body).toEqual({
      error: 'QUEUE_FULL',
      message: expect.any(String),
      details: [],
      timestamp: expect.any(String),
      requestId: expect.any(String),
      traceId: expect.any(String),
    });
    expect(Number(refused!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const [stored] = await db.query(`SELECT count(*)::int AS n FROM tool_executions WHERE user_id = $1`, [carol.userId]);
    expect(stored.n).toBe(accepted);

    // A retry of an accepted call is answered (it queues nothing new), and other users are not limited.
    const replay = await queueEcho(carol, CAROL_DELAY_MS, 'carol-0');
    expect(replay.status).toBe(200);
    expect(replay.body.executionId).toBe(first.body.executionId);
    const other = await queueEcho(bob, 0);
    expect(other.status).toBe(200);
  });
});

/** Two replicas on one PostgreSQL database: the running counts the claim orders by are global. */
describe('async queue fairness across two replicas (postgres)', () => {
  let a: TestApp;
  let b: TestApp | undefined;
  let alice: Caller;
  let bob: Caller;

  beforeAll(async () => {
    const env = toolsEnv({ TOOLS_QUEUE_CONCURRENCY: '1', TOOLS_QUEUE_POLL_MS: '50' });
    a = await startTestApp('postgres', { env });
    b = await startTestApp('postgres', { env, reuse: { dataDir: '', database: a.database } });
    alice = await signUp(a, 'fair.replicas.alice@example.com');
    bob = await signUp(a, 'fair.replicas.bob@example.com');
  });
  afterAll(async () => {
    await b?.stop();
    await a?.close();
  });

  it("runs another user's call on whichever replica frees first, ahead of one user's backlog", async () => {
    const backlog: string[] = [];
    for (let i = 0; i < 6; i += 1) {
      const res = await execute(a, alice, 'tool_echo', { parameters: { message: 'queued', delayMs: 1_500 }, options: { async: true } });
      backlog.push(res.body.executionId);
    }
    const trivial = await execute(a, bob, 'tool_echo', { parameters: { message: 'mine' }, options: { async: true } });
    expect((await waitForExecution(a, bob, trivial.body.executionId, 30_000)).body.status).toBe('completed');
    const db = a.app.get(DataSource);
    const [bobRow] = await db.query(`SELECT started_at FROM tool_executions WHERE id = $1`, [trivial.body.executionId]);
    const rows: Array<{ started_before: number }> = await db.query(
      `SELECT count(*) FILTER (WHERE started_at < $2)::int AS started_before FROM tool_executions WHERE id = ANY($1::text[])`,
      [backlog, bobRow.started_at],
    );
    // Two workers in all (one per replica): Bob waits for at most the two calls they held plus the next free one.
    expect(rows[0].started_before).toBeLessThanOrEqual(3);
    for (const id of backlog) expect((await waitForExecution(a, alice, id, 60_000)).body.status).toBe('completed');
  });
});
