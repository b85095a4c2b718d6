import { Logger } from '@nestjs/common';
import type { AuditEntry } from '@app/audit';
import { ExecutionRecorder, START_ROW_DELAY_MS } from './execution-recorder';
import { anExecution, anOutcome, deferred, T0 } from './execution.test-helpers';
import type { ExecutionFinish, NewExecution, StoredExecution } from './tool-execution.repository';
import type { ToolExecution } from './tool-execution';

type Finished = { execution: ToolExecution; finish: ExecutionFinish };

/**
 * The recorder with plain fakes: a unit of work whose transactions hand out a marker manager, the
 * repository's finishMany (which rows it "wrote"), the audit service, session activity and the
 * two Prometheus metrics. Constructor wiring lives here only.
 */
/** A gate the fakes wait at while the test holds it (like a statement in progress); `hold()` returns its release. */
function gate() {
  let held: Promise<void> | undefined;
  return {
    passed: async () => held,
    hold: () => {
      const d = deferred();
      held = d.promise;
      return () => {
        held = undefined;
        d.resolve();
      };
    },
  };
}

function setup(options: { maxStoredBytes?: number } = {}) {
  const transactions: Array<{
    manager: object;
    finished: Finished[];
    audited: AuditEntry[];
    chainLocked?: boolean;
    /** The statement sent with BEGIN (runSql's withBegin): the chain lock. */
    withBegin?: string;
  }> = [];
  /** Which ids the "database" still has leased to this process (others: lease lost). */
  const leased = new Set<string>(['exe_1', 'exe_2', 'exe_3']);
  const finishGate = gate();
  const insertGate = gate();
  const transaction = async <T>(work: (manager: object) => Promise<T>): Promise<T> => {
    const manager = { id: transactions.length };
    transactions.push({ manager, finished: [], audited: [] });
    return work(manager);
  };
  // The group commit's transactions are runSql's (raw pg); the fake hands out the same marker either way.
  const unitOfWork = {
    run: transaction,
    runSql: <T>(work: (manager: object, begun: unknown[]) => Promise<T>, options: { withBegin?: string } = {}): Promise<T> =>
      transaction((manager) => {
        transactions[transactions.length - 1].withBegin = options.withBegin;
        return work(manager, options.withBegin ? [{ chain_locked: '', isolation: 'read committed' }] : []);
      }),
  };
  /** INSERTs of rows: alone (manager null, no transaction) or in a transaction; the test may hold or refuse them. */
  const inserts: Array<{ tx: number | null; rows: NewExecution[]; lockChain?: boolean; withAudit?: boolean }> = [];
  let refuseInserts: Error | undefined;
  /** Ids whose INSERT finds the row already there (ON CONFLICT DO NOTHING). */
  const conflicting = new Set<string>();
  const repository = {
    insertMany: jest.fn(async (manager: { id: number } | null, rows: NewExecution[], opts: { lockChain?: boolean } = {}) => {
      inserts.push({ tx: manager?.id ?? null, rows, lockChain: opts.lockChain });
      await insertGate.passed();
      if (refuseInserts) throw refuseInserts;
      return rows.map((row) => !conflicting.has(row.execution.id));
    }),
    /** insertMany's rows with their audit records in one statement, which inserts the records only if every row went in. */
    insertManyAudited: jest.fn(
      async (
        manager: { id: number },
        rows: NewExecution[],
        audit: (first: number, condition: string) => { entries: AuditEntry[]; inserted(): void } | null,
      ) => {
        inserts.push({ tx: manager.id, rows, withAudit: true });
        await insertGate.passed();
        if (refuseInserts) throw refuseInserts;
        const inserted = rows.map((row) => !conflicting.has(row.execution.id));
        const linked = audit(24, '(SELECT count(*) FROM ex) = 1');
        if (!linked || !inserted.every(Boolean)) return { inserted, audited: false };
        transactions[manager.id].audited.push(...linked.entries);
        linked.inserted();
        return { inserted, audited: true };
      },
    ),
    finishMany: jest.fn(async (manager: { id: number }, finished: Finished[]) => {
      await finishGate.passed();
      transactions[manager.id].finished.push(...finished);
      return finished.map((f) => leased.has(f.execution.id));
    }),
  };
  const audit = {
    recordMany: jest.fn(async (manager: { id: number }, entries: AuditEntry[], opts: { chainLocked?: boolean }) => {
      transactions[manager.id].audited.push(...entries);
      transactions[manager.id].chainLocked = opts.chainLocked;
    }),
    record: jest.fn(async (_manager: object, _entry: AuditEntry) => undefined),
    linkedInsert: jest.fn((entries: AuditEntry[]) => ({ entries, inserted: jest.fn() })),
  };
  const activity = { count: jest.fn() };
  const executions = { inc: jest.fn() };
  const duration = { observe: jest.fn() };
  const config = { toolExecutions: { maxStoredBytes: options.maxStoredBytes ?? 64 * 1024 } };
  const recorder = new ExecutionRecorder(
    unitOfWork as never,
    repository as never,
    audit as never,
    activity as never,
    executions as never,
    duration as never,
    config as never,
  );
  return {
    recorder,
    transactions,
    inserts,
    repository,
    refuseInsertsWith: (error: Error | undefined) => (refuseInserts = error),
    conflicting,
    /** Holds every insertMany until the returned function is called. */
    holdInserts: insertGate.hold,
    leased,
    audit,
    activity,
    executions,
    duration,
    /** Holds every finishMany until the returned function is called. */
    hold: finishGate.hold,
  };
}

describe('ExecutionRecorder', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('records a completed call: its row and a success audit entry in one transaction, then the session counters and metrics', async () => {
    const f = setup();
    const execution = anExecution({ requestId: 'req-1' });
    const outcome = anOutcome({ result: { echoed: 'hi' }, durationMs: 40 });

    expect(await f.recorder.finish(execution, outcome)).toBe(true);

    expect(f.transactions).toHaveLength(1);
    const [tx] = f.transactions;
    expect(tx.finished).toEqual([
      {
        execution,
        finish: { status: 'completed', error: null, finishedAt: outcome.finishedAt, durationMs: 40, storedResult: '{"echoed":"hi"}' },
      },
    ]);
    expect(tx.chainLocked).toBe(true);
    expect(tx.audited).toEqual([
      {
        action: 'tool.execute',
        userId: 'usr_alice',
        resource: 'tool:tool_echo',
        result: 'success',
        severity: 'info',
        ipAddress: '203.0.113.7',
        userAgent: 'spec',
        details: { executionId: 'exe_1', status: 'completed', durationMs: 40, async: false, attempts: 1 },
        metadata: { sessionId: 'ses_alice', requestId: 'req-1' },
      },
    ]);
    expect(f.activity.count).toHaveBeenCalledWith('ses_alice', { toolExecutions: 1, errors: 0 });
    expect(f.executions.inc).toHaveBeenCalledWith({ tool: 'tool_echo', status: 'completed' });
    expect(f.duration.observe).toHaveBeenCalledWith({ tool: 'tool_echo' }, 0.04);
  });

  it('records a failed call as a failure with its error code (not under a key named `code`), no stored result, one error in the session', async () => {
    const f = setup();
    const outcome = anOutcome({ status: 'failed', result: null, error: { code: 'TIMEOUT', message: 'too slow' }, durationMs: 300 });

    expect(await f.recorder.finish(anExecution(), outcome)).toBe(true);

    const [tx] = f.transactions;
    expect(tx.finished[0].finish).toMatchObject({ status: 'failed', storedResult: null, error: { code: 'TIMEOUT', message: 'too slow' } });
    expect(tx.audited[0]).toMatchObject({ result: 'failure', severity: 'warning' });
    expect(tx.audited[0].details).toEqual({
      executionId: 'exe_1',
      status: 'failed',
      durationMs: 300,
      async: false,
      attempts: 1,
      errorCode: 'TIMEOUT',
      errorMessage: 'too slow',
    });
    expect(f.activity.count).toHaveBeenCalledWith('ses_alice', { toolExecutions: 1, errors: 1 });
    expect(f.executions.inc).toHaveBeenCalledWith({ tool: 'tool_echo', status: 'failed' });
  });

  it('writes nothing to the audit and counts nothing when the lease was lost', async () => {
    const f = setup();
    f.leased.delete('exe_1');

    expect(await f.recorder.finish(anExecution(), anOutcome())).toBe(false);

    expect(f.transactions[0].audited).toEqual([]);
    expect(f.activity.count).not.toHaveBeenCalled();
    expect(f.executions.inc).not.toHaveBeenCalled();
    expect(f.duration.observe).not.toHaveBeenCalled();
  });

  it('does not count a call without a session in any session', async () => {
    const f = setup();
    expect(await f.recorder.finish(anExecution({ sessionId: null }), anOutcome())).toBe(true);
    expect(f.activity.count).not.toHaveBeenCalled();
    expect(f.executions.inc).toHaveBeenCalledTimes(1);
  });

  it('records calls that finish while a transaction is in progress together in the next one (group commit)', async () => {
    const f = setup();
    const release = f.hold();
    const first = f.recorder.finish(anExecution({ id: 'exe_1' }), anOutcome());
    await new Promise((resolve) => setImmediate(resolve));
    expect(f.transactions).toHaveLength(1);
    const second = f.recorder.finish(anExecution({ id: 'exe_2' }), anOutcome());
    const third = f.recorder.finish(
      anExecution({ id: 'exe_3' }),
      anOutcome({ status: 'failed', result: null, error: { code: 'X', message: 'x' } }),
    );
    release();

    expect(await Promise.all([first, second, third])).toEqual([true, true, true]);
    expect(f.transactions.map((tx) => tx.finished.map((row) => row.execution.id))).toEqual([['exe_1'], ['exe_2', 'exe_3']]);
    expect(f.transactions[1].audited.map((entry) => [entry.details!.executionId, entry.result])).toEqual([
      ['exe_2', 'success'],
      ['exe_3', 'failure'],
    ]);
  });

  it('audits only the rows of a batch that were still leased', async () => {
    const f = setup();
    f.leased.delete('exe_2');
    const results = await Promise.all([
      f.recorder.finish(anExecution({ id: 'exe_1' }), anOutcome()),
      f.recorder.finish(anExecution({ id: 'exe_2' }), anOutcome()),
    ]);
    expect(results).toEqual([true, false]);
    expect(f.transactions).toHaveLength(1);
    expect(f.transactions[0].audited.map((entry) => entry.details!.executionId)).toEqual(['exe_1']);
    expect(f.activity.count).toHaveBeenCalledTimes(1);
  });

  describe('a synchronous call whose tool runs before its start row is written', () => {
    const stored: StoredExecution = { input: '{"message":"hi"}', payload: null, callerPermissions: null };
    const leaseUntil = new Date(T0.getTime() + 60_000);
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    /** Until the start row of a call still running went into the group commit (START_ROW_DELAY_MS), and a turn after. */
    const delayed = async () => {
      jest.advanceTimersByTime(START_ROW_DELAY_MS + 10);
      await turn();
    };
    // The start row's delay runs on a fake clock, so "within the delay" does not depend on how busy the machine is;
    // the group commit's turns (setImmediate) stay real.
    beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'nextTick', 'queueMicrotask', 'Date', 'performance'] }));
    afterEach(() => jest.useRealTimers());

    it('writes one row, in its final state, with its audit record, when the call ends before the start row went out', async () => {
      const f = setup();
      const execution = anExecution({ id: 'exe_1' });
      const started = f.recorder.start(execution, stored, leaseUntil);
      // The tool ran within the same turn: the outcome takes the start row's place in the queue.
      expect(await f.recorder.finish(execution, anOutcome({ durationMs: 5 }), started)).toBe(true);

      expect(f.inserts).toHaveLength(1);
      expect(f.inserts[0].tx).toBe(0);
      expect(f.inserts[0].withAudit).toBe(true);
      expect(f.inserts[0].rows).toEqual([
        {
          execution,
          stored,
          lockedUntil: null,
          finish: { status: 'completed', error: null, finishedAt: expect.any(Date), durationMs: 5, storedResult: '{"echoed":"hi"}' },
        },
      ]);
      expect(f.repository.finishMany).not.toHaveBeenCalled();
      expect(f.transactions).toHaveLength(1);
      expect(f.transactions[0].audited.map((entry) => [entry.details!.executionId, entry.details!.status])).toEqual([
        ['exe_1', 'completed'],
      ]);
      // BEGIN took the chain lock in its round trip; the row and its record went in one statement.
      expect(f.transactions[0].withBegin).toMatch(/pg_advisory_xact_lock/);
      expect(f.audit.recordMany).not.toHaveBeenCalled();
      expect(f.activity.count).toHaveBeenCalledWith('ses_alice', { toolExecutions: 1, errors: 0 });
    });

    it('audits only the rows written when one was there already (a retry of a call whose answer was lost)', async () => {
      const f = setup();
      const [first, second] = [anExecution({ id: 'exe_1', requestId: 'req-1' }), anExecution({ id: 'exe_2', requestId: 'req-2' })];
      f.conflicting.add('exe_1');
      const starts = [f.recorder.start(first, stored, leaseUntil), f.recorder.start(second, stored, leaseUntil)];
      await Promise.all([f.recorder.finish(first, anOutcome(), starts[0]), f.recorder.finish(second, anOutcome(), starts[1])]);
      expect(f.inserts.map((insert) => [insert.tx, insert.withAudit])).toEqual([[0, true]]);
      // The statement inserted no record (not every row went in): the audit writer writes the written row's, under the lock BEGIN took.
      expect(f.transactions[0].audited.map((entry) => entry.details!.executionId)).toEqual(['exe_2']);
      expect(f.transactions[0].chainLocked).toBe(true);
    });

    it('writes the start row alone (one INSERT, no transaction) when the tool is still running, and the outcome as an UPDATE after it', async () => {
      const f = setup();
      const execution = anExecution({ id: 'exe_1' });
      const started = f.recorder.start(execution, stored, leaseUntil);
      await turn();
      // Not yet: a call that ends within the delay writes one row instead.
      expect(f.inserts).toEqual([]);
      await delayed();
      expect(f.inserts).toEqual([{ tx: null, rows: [{ execution, stored, lockedUntil: leaseUntil }] }]);
      expect(f.transactions).toHaveLength(0);

      expect(await f.recorder.finish(execution, anOutcome(), started)).toBe(true);
      expect(f.inserts).toHaveLength(1);
      expect(f.transactions).toHaveLength(1);
      expect(f.transactions[0].finished.map((row) => row.execution.id)).toEqual(['exe_1']);
      expect(f.transactions[0].chainLocked).toBe(true);
    });

    it('sends the outcome only after the start row is committed, when the call ends while that row is being written', async () => {
      const f = setup();
      const execution = anExecution({ id: 'exe_1' });
      const release = f.holdInserts();
      const started = f.recorder.start(execution, stored, leaseUntil);
      await delayed();
      const finished = f.recorder.finish(execution, anOutcome(), started);
      await turn();
      await turn();
      // Another batch could go now, but an UPDATE before the INSERT committed would find no row.
      expect(f.repository.finishMany).not.toHaveBeenCalled();
      release();
      expect(await finished).toBe(true);
      expect(f.transactions.map((tx) => tx.finished.map((row) => row.execution.id))).toEqual([['exe_1']]);
    });

    it('writes the one final row when the start row could not be written, and counts the call once', async () => {
      const f = setup();
      const execution = anExecution({ id: 'exe_1' });
      f.refuseInsertsWith(new Error('insert refused'));
      const started = f.recorder.start(execution, stored, leaseUntil);
      await delayed();
      await turn();
      f.refuseInsertsWith(undefined);
      expect(await f.recorder.finish(execution, anOutcome(), started)).toBe(true);
      expect(f.inserts.map((insert) => [insert.tx, insert.rows[0].finish?.status ?? 'running'])).toEqual([
        [null, 'running'],
        [0, 'completed'],
      ]);
      expect(f.transactions[0].audited).toHaveLength(1);
      expect(f.activity.count).toHaveBeenCalledTimes(1);
    });

    it('writes one row when the call ends after some turns but within the start row delay (an upstream answering in milliseconds)', async () => {
      const f = setup();
      const execution = anExecution({ id: 'exe_1' });
      const started = f.recorder.start(execution, stored, leaseUntil);
      for (let i = 0; i < 5; i++) await turn();
      // Up to the last millisecond of the delay, the start row stays out of the group commit.
      jest.advanceTimersByTime(START_ROW_DELAY_MS - 1);
      await turn();
      expect(await f.recorder.finish(execution, anOutcome({ durationMs: 3 }), started)).toBe(true);
      expect(f.inserts.map((insert) => [insert.tx, insert.rows.map((row) => row.finish?.status ?? 'running')])).toEqual([
        [0, ['completed']],
      ]);
      expect(f.repository.finishMany).not.toHaveBeenCalled();
      expect(f.transactions[0].audited.map((entry) => entry.details!.executionId)).toEqual(['exe_1']);
      // Nothing goes out later for the row the call no longer needs.
      await delayed();
      expect(f.inserts).toHaveLength(1);
    });

    it('fails the call (nothing is counted) when its one row cannot be written', async () => {
      const f = setup();
      const execution = anExecution({ id: 'exe_1' });
      f.refuseInsertsWith(new Error('insert refused'));
      const started = f.recorder.start(execution, stored, leaseUntil);
      await expect(f.recorder.finish(execution, anOutcome(), started)).rejects.toThrow('insert refused');
      expect(f.activity.count).not.toHaveBeenCalled();
    });

    it('answers a requestId call whether its row was created, once that row is committed', async () => {
      const f = setup();
      const release = f.holdInserts();
      const started = f.recorder.start(anExecution({ requestId: 'req-1' }), stored, leaseUntil);
      let created: boolean | undefined;
      void f.recorder.created(started).then((value) => (created = value));
      await turn();
      await turn();
      expect(created).toBeUndefined();
      release();
      await turn();
      expect(created).toBe(true);
    });
  });

  it('commits other audit records (federated reads) in the same transaction as finished calls, in the order they came', async () => {
    const f = setup();
    const entry = (resource: string): AuditEntry =>
      ({ action: 'resource.read', userId: 'usr_alice', resource, result: 'success', severity: 'info', details: {} }) as AuditEntry;
    await Promise.all([
      f.recorder.recordAudit(entry('resource:a')),
      f.recorder.finish(anExecution({ id: 'exe_1' }), anOutcome()),
      f.recorder.recordAudit(entry('resource:b')),
    ]);
    expect(f.transactions).toHaveLength(1);
    expect(f.transactions[0].audited.map((audited) => audited.resource)).toEqual(['resource:a', 'tool:tool_echo', 'resource:b']);
  });

  it('keeps at most two group-commit transactions in progress; what arrives meanwhile waits for one of them', async () => {
    const f = setup();
    const release = f.hold();
    const pending = [f.recorder.finish(anExecution({ id: 'exe_1' }), anOutcome())];
    await new Promise((resolve) => setImmediate(resolve));
    pending.push(f.recorder.finish(anExecution({ id: 'exe_2' }), anOutcome()));
    await new Promise((resolve) => setImmediate(resolve));
    pending.push(f.recorder.finish(anExecution({ id: 'exe_3' }), anOutcome()));
    await new Promise((resolve) => setImmediate(resolve));
    expect(f.transactions).toHaveLength(2);
    release();
    expect(await Promise.all(pending)).toEqual([true, true, true]);
    expect(f.transactions.map((tx) => tx.finished.map((row) => row.execution.id))).toEqual([['exe_1'], ['exe_2'], ['exe_3']]);
  });

  it('keeps a redacted, bounded copy of the input', () => {
    const f = setup({ maxStoredBytes: 200 });
    const stored = JSON.parse(f.recorder.storedInput({ query: 'x', password: 'hunter2' }));
    expect(stored.query).toBe('x');
    expect(stored.password).not.toBe('hunter2');
    const large = JSON.parse(f.recorder.storedInput({ blob: 'y'.repeat(10_000) }));
    expect(large.truncated).toBe(true);
    expect(large.originalBytes).toBeGreaterThan(200);
    expect(large.preview.startsWith('{"blob":"yyy')).toBe(true);
  });

  it('counts abandoned executions as failures in their sessions and metrics', () => {
    const f = setup();
    f.recorder.countAbandoned([
      anExecution({ id: 'exe_9', status: 'failed', durationMs: null }),
      anExecution({ id: 'exe_8', sessionId: null, status: 'failed', durationMs: 1500 }),
    ]);
    expect(f.activity.count.mock.calls).toEqual([['ses_alice', { toolExecutions: 1, errors: 1 }]]);
    expect(f.executions.inc.mock.calls).toEqual([[{ tool: 'tool_echo', status: 'failed' }], [{ tool: 'tool_echo', status: 'failed' }]]);
    expect(f.duration.observe.mock.calls).toEqual([[{ tool: 'tool_echo' }, 1.5]]);
  });
});
