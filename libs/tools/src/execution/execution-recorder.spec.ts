import { Logger } from '@nestjs/common';
import type { AuditEntry } from '@app/audit';
import { ExecutionRecorder } from './execution-recorder';
import { anExecution, anOutcome, deferred } from './execution.test-helpers';
import type { ExecutionFinish } from './tool-execution.repository';
import type { ToolExecution } from './tool-execution';

type Finished = { execution: ToolExecution; finish: ExecutionFinish };

/**
 * The recorder with plain fakes: a unit of work whose transactions hand out a marker manager, the
 * repository's finishMany (which rows it "wrote"), the audit service, session activity and the
 * two Prometheus metrics. Constructor wiring lives here only.
 */
function setup(options: { maxStoredBytes?: number } = {}) {
  const transactions: Array<{ manager: object; finished: Finished[]; audited: AuditEntry[]; chainLocked?: boolean }> = [];
  /** Which ids the "database" still has leased to this process (others: lease lost). */
  const leased = new Set<string>(['exe_1', 'exe_2', 'exe_3']);
  let gate: Promise<void> | undefined;
  const unitOfWork = {
    run: async <T>(work: (manager: object) => Promise<T>): Promise<T> => {
      const manager = { id: transactions.length };
      transactions.push({ manager, finished: [], audited: [] });
      return work(manager);
    },
  };
  const repository = {
    finishMany: jest.fn(async (manager: { id: number }, finished: Finished[]) => {
      if (gate) await gate;
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
    leased,
    audit,
    activity,
    executions,
    duration,
    /** Holds every finishMany until the returned function is called. */
    hold: () => {
      const d = deferred();
      gate = d.promise;
      return () => {
        gate = undefined;
        d.resolve();
      };
    },
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
