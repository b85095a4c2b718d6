import { AppException, ExecutionScope, Permission, Principal } from '@app/core';
import type { CatalogTool } from '../catalog/catalog-tool';
import { InMemoryRateLimitStore } from '../rate-limit/in-memory-rate-limit.store';
import { ToolRateLimiter } from '../rate-limit/tool-rate-limiter';
import { ToolsErrorCode } from '../tool-error-codes';
import { aPrincipal, aTool, anOutcome, deferred, T0 } from './execution.test-helpers';
import type { ExecuteToolRequest, ToolExecution } from './tool-execution';
import type { StoredExecution } from './tool-execution.repository';
import { ToolExecutionService } from './tool-execution.service';
import type { RunOutcome } from './tool-runner';
import { ToolSchemaValidator } from './tool-schema-validator';

const META = { ipAddress: '203.0.113.7', userAgent: 'spec' };
const MAX_TIMEOUT_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 30_000;
const LEASE_GRACE_MS = 5_000;

interface Row {
  execution: ToolExecution;
  stored: StoredExecution;
  lockedBy: string | null;
  lockedUntil: Date | null;
}

/**
 * The pipeline with the real schema validator and rate limiter (in memory), and plain fakes for
 * everything that touches storage or runs tools: a repository keeping rows in a map (one row per
 * user and requestId), a runner whose answers the test decides, a recorder that "commits" at once.
 * Constructor wiring lives here only: adapt this function when the service's dependencies change.
 */
function setup(tools: CatalogTool[] = [aTool()]) {
  let now = T0;
  const clock = { now: () => now, nowMs: () => now.getTime() };
  const catalog = new Map(tools.map((tool) => [tool.id, tool]));
  const rows = new Map<string, Row>();
  const workerId = 'this-process';
  const repository = {
    workerId,
    insert: jest.fn(async (execution: ToolExecution, stored: StoredExecution, lockedUntil: Date | null) => {
      const earlier = [...rows.values()].find(
        (r) => r.execution.requestId !== null && r.execution.userId === execution.userId && r.execution.requestId === execution.requestId,
      );
      if (earlier) return { execution: earlier.execution, created: false };
      rows.set(execution.id, { execution: { ...execution }, stored, lockedBy: lockedUntil ? workerId : null, lockedUntil });
      return { execution, created: true };
    }),
    findById: async (id: string) => (rows.has(id) ? { ...rows.get(id)!.execution } : null),
    findByRequestId: async (userId: string, requestId: string) => {
      const row = [...rows.values()].find((r) => r.execution.userId === userId && r.execution.requestId === requestId);
      return row ? { ...row.execution } : null;
    },
    leaseOf: async (id: string) => (rows.has(id) ? { lockedBy: rows.get(id)!.lockedBy, lockedUntil: rows.get(id)!.lockedUntil } : null),
    takeOver: jest.fn(async (id: string, _now: Date, lockedUntil: Date) => {
      const row = rows.get(id);
      if (!row || row.execution.status !== 'running') return false;
      Object.assign(row, { lockedBy: workerId, lockedUntil });
      return true;
    }),
  };
  /** What the runner answers next (a promise the test can hold); by default a completed echo. */
  const runs: Array<{ toolId: string; input: unknown; timeoutMs: number }> = [];
  let nextOutcome: () => Promise<RunOutcome> = async () => anOutcome();
  const runner = {
    run: jest.fn(async (tool: CatalogTool, input: unknown, _caller: unknown, options: { timeoutMs: number }) => {
      runs.push({ toolId: tool.id, input, timeoutMs: options.timeoutMs });
      return nextOutcome();
    }),
  };
  let finishFailures: Error[] = [];
  /** Start rows "commit" when this resolves (at once unless the test holds them). */
  let startGate = { promise: Promise.resolve(), resolve: () => undefined as void };
  const recorder = {
    storedInput: (input: unknown) => JSON.stringify(input),
    // The start row "commits" at once (the real recorder's group commit is ExecutionRecorder's spec).
    start: jest.fn((execution: ToolExecution, stored: StoredExecution, lockedUntil: Date) => ({
      created: startGate.promise.then(() => repository.insert(execution, stored, lockedUntil)).then((inserted) => inserted.created),
    })),
    created: async (started: { created: Promise<boolean> }) => started.created,
    finish: jest.fn(async (execution: ToolExecution, outcome: RunOutcome, started?: { created: Promise<boolean> }) => {
      // (The real recorder writes the outcome in the start row's place when that is still queued.)
      await started?.created;
      const failure = finishFailures.shift();
      if (failure) throw failure;
      const row = rows.get(execution.id)!;
      if (row.lockedBy !== workerId) return false;
      Object.assign(row.execution, {
        status: outcome.status,
        result: outcome.result,
        error: outcome.error,
        durationMs: outcome.durationMs,
      });
      row.lockedBy = null;
      return true;
    }),
  };
  const queue = {
    enqueue: jest.fn(async (execution: ToolExecution, stored: StoredExecution) => repository.insert(execution, stored, null)),
    nudge: jest.fn(),
  };
  const sessions = {
    findById: async (id: string) =>
      ({ ses_alice: { userId: 'usr_alice' }, ses_alice_2: { userId: 'usr_alice', contextId: 'ctx_1' }, ses_bob: { userId: 'usr_bob' } })[
        id
      ] ?? null,
    isActive: async (id: string) => id !== 'ses_ended',
  };
  const audit = { recordStandalone: jest.fn(async () => undefined) };
  const contexts = {
    resolveForExecution: jest.fn(async (_principal: Principal, contextId: string) => {
      if (contextId !== 'ctx_1') throw AppException.notFound('Context not found');
      return { id: 'ctx_1', tools: ['tool_echo'], settings: { defaultTimeoutMs: 200 } };
    }),
  };
  const config = {
    tools: { maxTimeoutMs: MAX_TIMEOUT_MS, defaultTimeoutMs: DEFAULT_TIMEOUT_MS },
    toolExecutions: { queueLeaseGraceMs: LEASE_GRACE_MS },
  };
  const service = new ToolExecutionService(
    { find: (id: string) => catalog.get(id) } as never,
    new ToolRateLimiter(new InMemoryRateLimitStore(), clock as never),
    new ToolSchemaValidator(),
    runner as never,
    repository as never,
    recorder as never,
    queue as never,
    sessions as never,
    audit as never,
    clock as never,
    config as never,
  );
  /** What the edge does before the pipeline runs: the scope (principal, context) resolved once. */
  const scopeOf = async (principal: Principal, request: ExecuteToolRequest): Promise<ExecutionScope> => {
    const contextId = request.context?.contextId;
    return { principal, context: contextId === undefined ? null : await contexts.resolveForExecution(principal, contextId) };
  };
  return {
    service,
    rows,
    runs,
    runner,
    repository,
    recorder,
    queue,
    audit,
    contexts,
    answerWith: (next: () => Promise<RunOutcome>) => (nextOutcome = next),
    failFinishWith: (...errors: Error[]) => (finishFailures = errors),
    /** Holds every start row's commit until the returned function is called. */
    holdStarts: () => {
      startGate = deferred();
      return () => startGate.resolve();
    },
    advance: (ms: number) => (now = new Date(now.getTime() + ms)),
    execute: async (request: ExecuteToolRequest, principal = aPrincipal(), toolId = 'tool_echo') =>
      service.execute(await scopeOf(principal, request), toolId, request, META),
  };
}

/** The AppException a promise rejects with (fails the test otherwise). */
async function refusal(promise: Promise<unknown>): Promise<AppException> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AppException) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

const messageSchema = { type: 'object', properties: { message: { type: 'string' } }, required: ['message'], additionalProperties: false };

describe('ToolExecutionService', () => {
  describe('refusals before anything runs', () => {
    it('answers 404 for an unknown tool and for one its provider no longer lists', async () => {
      const f = setup([aTool({ id: 'tool_gone', available: false })]);
      expect((await refusal(f.execute({ parameters: {} }, aPrincipal(), 'tool_nope'))).getStatus()).toBe(404);
      expect((await refusal(f.execute({ parameters: {} }, aPrincipal(), 'tool_gone'))).getStatus()).toBe(404);
      expect(f.runner.run).not.toHaveBeenCalled();
      expect(f.audit.recordStandalone).not.toHaveBeenCalled();
    });

    it('refuses a disabled tool with 403 TOOL_DISABLED and audits the refusal', async () => {
      const f = setup([aTool({ enabled: false })]);
      const error = await refusal(f.execute({ parameters: {} }));
      expect({ status: error.getStatus(), code: error.code }).toEqual({ status: 403, code: ToolsErrorCode.TOOL_DISABLED });
      expect(f.audit.recordStandalone).toHaveBeenCalledWith(
        expect.objectContaining({
          action: 'tool.execute',
          userId: 'usr_alice',
          resource: 'tool:tool_echo',
          result: 'failure',
          details: { status: 'refused', reason: 'TOOL_DISABLED' },
        }),
      );
      expect(f.rows.size).toBe(0);
    });

    it("refuses a caller missing one of the tool's permissions, naming it, and audits the refusal", async () => {
      const f = setup([aTool({ permissions: ['tools:execute', 'system:read'] })]);
      const error = await refusal(f.execute({ parameters: {} }));
      expect(error.getStatus()).toBe(403);
      expect(error.message).toContain('system:read');
      expect(f.audit.recordStandalone).toHaveBeenCalledWith(
        expect.objectContaining({ details: { status: 'refused', reason: 'FORBIDDEN', missing: ['system:read'] } }),
      );
      expect(f.runner.run).not.toHaveBeenCalled();
    });

    it('refuses invalid parameters with one detail per field, before any row exists, and does not audit it', async () => {
      const f = setup([aTool({ inputSchema: messageSchema, definitionHash: 'h-message' })]);
      const error = await refusal(f.execute({ parameters: { message: 7, extra: true } }));
      expect(error.getStatus()).toBe(400);
      expect(error.details.map((detail) => detail.field).sort()).toEqual(['parameters.extra', 'parameters.message']);
      expect(f.rows.size).toBe(0);
      expect(f.audit.recordStandalone).not.toHaveBeenCalled();
    });

    it("counts every call against the caller's budget for the tool and refuses the one over it with 429", async () => {
      const f = setup([aTool({ rateLimit: { requests: 2, window: '1m' }, rateWindowMs: 60_000 })]);
      const first = await f.execute({ parameters: {} });
      const second = await f.execute({ parameters: {} });
      expect([first.rateLimit?.remaining, second.rateLimit?.remaining]).toEqual([1, 0]);
      const error = await refusal(f.execute({ parameters: {} }));
      expect(error.getStatus()).toBe(429);
      expect(Number(error.headers['Retry-After'])).toBeGreaterThan(0);
      // Another user has a budget of their own.
      expect((await f.execute({ parameters: {} }, aPrincipal({ userId: 'usr_bob', sessionId: 'ses_bob' }))).execution.status).toBe(
        'completed',
      );
      // A new window brings the budget back.
      f.advance(60_000);
      expect((await f.execute({ parameters: {} })).rateLimit?.remaining).toBe(1);
    });

    it("refuses a session that is not one of the caller's active sessions with 400 INVALID_SESSION", async () => {
      const f = setup();
      for (const sessionId of ['ses_bob', 'ses_unknown', 'ses_ended']) {
        const error = await refusal(f.execute({ parameters: {}, context: { sessionId } }));
        expect({ sessionId, status: error.getStatus(), code: error.code }).toEqual({
          sessionId,
          status: 400,
          code: ToolsErrorCode.INVALID_SESSION,
        });
      }
      expect(f.rows.size).toBe(0);
    });
  });

  describe('a synchronous call', () => {
    it('inserts a running row leased to this process, runs the tool and returns what the recorder committed', async () => {
      const f = setup();
      f.answerWith(async () => anOutcome({ result: { echoed: 'hi' }, durationMs: 12 }));
      const outcome = await f.execute({ parameters: { message: 'hi' } });

      expect(outcome.replayed).toBe(false);
      expect(outcome.rateLimit).toEqual({ allowed: true, limit: 10, remaining: 9, resetInMs: 60_000 });
      expect(outcome.execution).toMatchObject({
        toolId: 'tool_echo',
        userId: 'usr_alice',
        sessionId: 'ses_alice',
        status: 'completed',
        result: { echoed: 'hi' },
        durationMs: 12,
        async: false,
        attempts: 1,
      });
      const row = f.rows.get(outcome.execution.id)!;
      expect(row.stored).toEqual({ input: '{"message":"hi"}', payload: null, callerPermissions: null });
      expect(row.lockedUntil).toEqual(new Date(T0.getTime() + DEFAULT_TIMEOUT_MS + LEASE_GRACE_MS));
      expect(f.recorder.finish).toHaveBeenCalledTimes(1);
      expect(f.runs).toEqual([{ toolId: 'tool_echo', input: { message: 'hi' }, timeoutMs: DEFAULT_TIMEOUT_MS }]);
    });

    it('runs the tool without waiting for its running row to commit (the recorder writes it, or the outcome in its place)', async () => {
      const f = setup();
      const release = f.holdStarts();
      const call = f.execute({ parameters: { message: 'now' } });
      await new Promise((resolve) => setImmediate(resolve));
      expect(f.runs).toHaveLength(1);
      // The outcome goes to the recorder with the call's start, which it replaces or follows.
      expect(f.recorder.finish).toHaveBeenCalledWith(expect.anything(), expect.anything(), f.recorder.start.mock.results[0].value);
      release();
      expect((await call).execution.status).toBe('completed');
    });

    it('with a requestId, runs the tool only once its row is committed (that row decides whether this is a repeat)', async () => {
      const f = setup();
      const release = f.holdStarts();
      const call = f.execute({ parameters: { message: 'once' }, context: { requestId: 'req-wait' } });
      await new Promise((resolve) => setImmediate(resolve));
      expect(f.runs).toHaveLength(0);
      release();
      await call;
      expect(f.runs).toHaveLength(1);
    });

    it('runs under the timeout asked for, never above the maximum', async () => {
      const f = setup();
      await f.execute({ parameters: {}, options: { timeout: 500 } });
      await f.execute({ parameters: {}, options: { timeout: MAX_TIMEOUT_MS * 10 } });
      expect(f.runs.map((run) => run.timeoutMs)).toEqual([500, MAX_TIMEOUT_MS]);
    });

    it('returns a failed run as a failed execution (not as an error)', async () => {
      const f = setup();
      f.answerWith(async () => anOutcome({ status: 'failed', result: null, error: { code: 'TIMEOUT', message: 'stopped' } }));
      const { execution } = await f.execute({ parameters: {} });
      expect(execution).toMatchObject({ status: 'failed', result: null, error: { code: 'TIMEOUT', message: 'stopped' } });
    });

    it("in a context: only the context's tools, with its default timeout", async () => {
      const f = setup([aTool(), aTool({ id: 'tool_other', definitionHash: 'h-other' })]);
      await f.execute({ parameters: {}, context: { contextId: 'ctx_1' } });
      expect(f.runs.map((run) => run.timeoutMs)).toEqual([200]);
      const error = await refusal(f.execute({ parameters: {}, context: { contextId: 'ctx_1' } }, aPrincipal(), 'tool_other'));
      expect(error.getStatus()).toBe(403);
      // The pipeline runs in the scope it is given (the edge resolved a bound key's context): no second lookup.
      const lookups = f.contexts.resolveForExecution.mock.calls.length;
      const scope = {
        principal: aPrincipal({ via: 'api_key', apiKeyId: 'key_1', contextId: 'ctx_1' }),
        context: { id: 'ctx_1', tools: ['tool_echo'], settings: { defaultTimeoutMs: 300 } },
      };
      await f.service.execute(scope, 'tool_echo', { parameters: {} }, { ipAddress: null, userAgent: null });
      expect(f.runs.map((run) => run.timeoutMs)).toEqual([200, 300]);
      expect(f.contexts.resolveForExecution.mock.calls.length).toBe(lookups);
    });
  });

  describe('an asynchronous call', () => {
    it('queues a pending row with its exact parameters, wakes the queue and runs nothing here', async () => {
      const f = setup();
      const outcome = await f.execute({ parameters: { message: 'later' }, options: { async: true } });
      expect(outcome.execution).toMatchObject({ status: 'pending', async: true, attempts: 0, startedAt: null });
      expect(f.rows.get(outcome.execution.id)!.stored).toEqual({
        input: '{"message":"later"}',
        payload: '{"message":"later"}',
        callerPermissions: null,
      });
      expect(f.queue.nudge).toHaveBeenCalledTimes(1);
      expect(f.runner.run).not.toHaveBeenCalled();
    });

    it("carries an API key's narrower permissions to the queue", async () => {
      const f = setup();
      const key = aPrincipal({ via: 'api_key', apiKeyId: 'key_1', permissions: ['tools:execute'] });
      const outcome = await f.execute({ parameters: {}, options: { async: true } }, key);
      expect(f.rows.get(outcome.execution.id)!.stored.callerPermissions).toBe('["tools:execute"]');
    });
  });

  describe('a repeated requestId', () => {
    it('returns the finished execution again without running or counting it', async () => {
      const f = setup();
      const first = await f.execute({ parameters: { message: 'once' }, context: { requestId: 'req-1' } });
      const again = await f.execute({ parameters: { message: 'once' }, context: { requestId: 'req-1' } });
      expect(again).toEqual({
        execution: expect.objectContaining({ id: first.execution.id, status: 'completed' }),
        rateLimit: null,
        replayed: true,
      });
      expect(f.runner.run).toHaveBeenCalledTimes(1);
    });

    it('refuses the same requestId for a different call with 409', async () => {
      const f = setup();
      await f.execute({ parameters: { message: 'once' }, context: { requestId: 'req-1' } });
      const error = await refusal(f.execute({ parameters: { message: 'other' }, context: { requestId: 'req-1' } }));
      expect({ status: error.getStatus(), code: error.code }).toEqual({ status: 409, code: ToolsErrorCode.IDEMPOTENCY_KEY_REUSED });
    });

    it('joins a call this process is still running: one run, both callers get its outcome', async () => {
      const f = setup();
      const held = deferred<RunOutcome>();
      f.answerWith(() => held.promise);
      const first = f.execute({ parameters: { message: 'x' }, context: { requestId: 'req-2' } });
      await new Promise((resolve) => setImmediate(resolve));
      const retry = f.execute({ parameters: { message: 'x' }, context: { requestId: 'req-2' } });
      held.resolve(anOutcome({ result: { echoed: 'x' } }));
      const [a, b] = await Promise.all([first, retry]);
      expect(f.runner.run).toHaveBeenCalledTimes(1);
      expect(b).toMatchObject({ replayed: true, execution: { id: a.execution.id, status: 'completed', result: { echoed: 'x' } } });
    });

    it('takes over a running row nobody holds any more (lease expired) and runs it once', async () => {
      const f = setup();
      const orphan = { ...(await f.execute({ parameters: { message: 'y' }, context: { requestId: 'req-3' } })).execution };
      // As if another process had inserted it and died mid-call.
      Object.assign(f.rows.get(orphan.id)!, { lockedBy: 'dead-process', lockedUntil: new Date(T0.getTime() - 1) });
      Object.assign(f.rows.get(orphan.id)!.execution, { status: 'running', result: null });

      const retried = await f.execute({ parameters: { message: 'y' }, context: { requestId: 'req-3' } });
      expect(f.repository.takeOver).toHaveBeenCalledTimes(1);
      expect(f.runner.run).toHaveBeenCalledTimes(2);
      expect(retried).toMatchObject({ replayed: true, rateLimit: null, execution: { id: orphan.id, status: 'completed' } });
    });

    it('records an outcome the database could not take once it is back; a retry gets that outcome', async () => {
      const f = setup();
      const outage = Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' });
      f.failFinishWith(outage);
      await expect(f.execute({ parameters: { message: 'z' }, context: { requestId: 'req-4' } })).rejects.toBe(outage);
      // The retry joins the pending recording (retried after a short backoff) instead of running again.
      const retry = await f.execute({ parameters: { message: 'z' }, context: { requestId: 'req-4' } });
      expect(retry).toMatchObject({ replayed: true, execution: { status: 'completed' } });
      expect(f.runner.run).toHaveBeenCalledTimes(1);
      expect(f.recorder.finish).toHaveBeenCalledTimes(2);
    });
  });

  describe('find', () => {
    async function withExecution() {
      const f = setup();
      const { execution } = await f.execute({ parameters: {} });
      return { f, id: execution.id };
    }

    it('shows an execution to its owner and to holders of admin:executions:read, to nobody else (404)', async () => {
      const { f, id } = await withExecution();
      expect((await f.service.find(aPrincipal(), id)).id).toBe(id);
      expect((await f.service.find(aPrincipal({ userId: 'usr_admin', permissions: [Permission.ADMIN_EXECUTIONS_READ] }), id)).id).toBe(id);
      expect((await refusal(f.service.find(aPrincipal({ userId: 'usr_bob' }), id))).getStatus()).toBe(404);
      expect((await refusal(f.service.find(aPrincipal(), 'exe_unknown'))).getStatus()).toBe(404);
    });

    it("shows a key bound to a context only the executions of that context's sessions", async () => {
      const { f, id } = await withExecution();
      const bound = aPrincipal({ via: 'api_key', apiKeyId: 'key_1', contextId: 'ctx_1' });
      expect((await refusal(f.service.find(bound, id))).getStatus()).toBe(404);
      const inContext = await f.execute(
        { parameters: {}, context: { sessionId: 'ses_alice_2' } },
        aPrincipal({ sessionId: 'ses_alice_2' }),
      );
      expect((await f.service.find(bound, inContext.execution.id)).id).toBe(inContext.execution.id);
    });
  });
});
