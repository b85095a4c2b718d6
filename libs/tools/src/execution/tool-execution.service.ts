import { Inject, Injectable } from '@nestjs/common';
import { AuditAction, auditEvent, AuditService } from '@app/audit';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  APP_CONFIG,
  AppConfig,
  AppException,
  assertToolInContext,
  Clock,
  ErrorCode,
  ExecutionScope,
  IDP_SUBJECT_TOKEN,
  isDatabaseUnavailable,
  newId,
  Permission,
  Principal,
} from '@app/core';
import { SessionService } from '@app/sessions';
import { failSpan, inSpan, tracing } from '@app/telemetry';
import type { CatalogTool } from '../catalog/catalog-tool';
import { ToolCatalogService } from '../catalog/tool-catalog.service';
import { fingerprint } from '../common/fingerprint';
import { RateLimitDecision } from '../rate-limit/rate-limit-store';
import { ToolRateLimiter } from '../rate-limit/tool-rate-limiter';
import { ToolsErrorCode } from '../tool-error-codes';
import { ExecutionRecorder, StartedCall } from './execution-recorder';
import type { ExecuteToolRequest, ExecutionMeta, ToolExecution } from './tool-execution';
import { ToolExecutionQueue } from './tool-execution.queue';
import { ToolExecutionRepository } from './tool-execution.repository';
import { RunOutcome, ToolRunner } from './tool-runner';
import { ToolSchemaValidator } from './tool-schema-validator';

/** Backoff of the retries that record an outcome the database could not take. */
const RECORD_RETRY_MIN_MS = 250;
const RECORD_RETRY_MAX_MS = 5_000;
/** How long a retry waits for a call another process runs before it answers 503 (retry later). */
const JOIN_ELSEWHERE_MAX_MS = 10_000;
const JOIN_POLL_MS = 250;

export interface ExecutionOutcome {
  execution: ToolExecution;
  /** The caller's budget for this tool after the call; null when nothing was counted (a replay). */
  rateLimit: RateLimitDecision | null;
  /** True when `requestId` matched an earlier execution, which is returned instead of a new run. */
  replayed: boolean;
}

/**
 * The one execution pipeline: REST's POST /tools/{id}/execute and the MCP gateway's
 * `tools/call` both come here, with the caller's ExecutionScope resolved at their edge (the
 * principal, and the context asked for or bound, with its settings): the pipeline never looks a
 * context up. In order:
 *   1. the tool exists (404) and is enabled (403 TOOL_DISABLED);
 *   2. the caller holds the tool's permissions (403);
 *   3. in a context: the tool is one of its tools (403 TOOL_NOT_IN_CONTEXT) and its budget; then
 *      the caller's per-tool rate limit (429 with X-RateLimit-* and Retry-After);
 *   4. `parameters` against the tool's input schema (400, one detail per field);
 *   5. the run, under a timeout and an abort signal;
 *   6. the output against the output schema;
 *   7. the record: execution row and audit entry in one transaction, then the session's
 *      counters and the Prometheus metrics (see ExecutionRecorder).
 * A repeated `context.requestId` returns the earlier execution after steps 1 and 2. Async calls
 * stop after step 4 with a `pending` row that the durable queue runs (steps 5-7).
 *
 * A repeat of a synchronous call that is still `running` (a retry after a 503, or after the
 * client gave up waiting) never gets that bare row: it joins the call when a process is running
 * it (or still recording its outcome after the database came back), and runs it, exactly once,
 * when none can be (see resume()).
 *
 * The embedded database has one connection, so no transaction is ever open while a tool runs:
 * the `running` row and the outcome go through the recorder's group commit, each batch one
 * statement or one short transaction.
 */
@Injectable()
export class ToolExecutionService {
  private readonly maxTimeoutMs: number;
  private readonly defaultTimeoutMs: number;
  private readonly leaseGraceMs: number;
  /**
   * This process's synchronous calls, from before their INSERT until their outcome is recorded
   * (null: given up, e.g. the INSERT failed). A retry of one of them waits for this.
   */
  private readonly calls = new Map<string, Promise<ToolExecution | null>>();

  constructor(
    private readonly catalog: ToolCatalogService,
    private readonly limiter: ToolRateLimiter,
    private readonly validator: ToolSchemaValidator,
    private readonly runner: ToolRunner,
    private readonly repository: ToolExecutionRepository,
    private readonly recorder: ExecutionRecorder,
    private readonly queue: ToolExecutionQueue,
    private readonly sessions: SessionService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.maxTimeoutMs = config.tools.maxTimeoutMs;
    this.defaultTimeoutMs = config.tools.defaultTimeoutMs;
    this.leaseGraceMs = config.toolExecutions.queueLeaseGraceMs;
  }

  /**
   * `request.context.contextId` was the edge's to resolve: the pipeline runs in `scope.context`.
   * Traced as one `execute_tool {tool}` span (the GenAI semantic conventions' tool execution),
   * failed when the call is refused or its run failed (`error.type`: the error code).
   */
  execute(scope: ExecutionScope, toolId: string, request: ExecuteToolRequest, meta: ExecutionMeta): Promise<ExecutionOutcome> {
    const inScope = scope.correlation ? { ...meta, correlation: scope.correlation } : meta;
    if (!tracing.tracer) return this.executeInScope(scope, toolId, request, inScope);
    return inSpan(
      `execute_tool ${toolId}`,
      {
        attributes: {
          'gen_ai.operation.name': 'execute_tool',
          'gen_ai.tool.name': toolId,
          'app.tool.async': request.options?.async === true,
        },
      },
      async (span) => {
        const outcome = await this.executeInScope(scope, toolId, request, inScope);
        if (span) {
          span.setAttribute('gen_ai.tool.call.id', outcome.execution.id);
          span.setAttribute('app.tool.execution.status', outcome.execution.status);
          if (outcome.execution.status === 'failed') failSpan(span, undefined, outcome.execution.error?.code ?? 'failed');
        }
        return outcome;
      },
    );
  }

  private async executeInScope(
    scope: ExecutionScope,
    toolId: string,
    request: ExecuteToolRequest,
    meta: ExecutionMeta,
  ): Promise<ExecutionOutcome> {
    const { principal, context } = scope;
    const tool = this.catalog.find(toolId);
    if (!tool || !tool.available) throw AppException.notFound('Tool not found');
    if (!tool.enabled) {
      await this.auditRefusal(principal, tool, meta, { reason: ToolsErrorCode.TOOL_DISABLED });
      throw AppException.forbidden(`Tool ${tool.id} is disabled`, ToolsErrorCode.TOOL_DISABLED);
    }
    const missing = tool.permissions.filter((permission) => !principal.permissions.includes(permission));
    if (missing.length > 0) {
      await this.auditRefusal(principal, tool, meta, { reason: 'FORBIDDEN', missing });
      throw AppException.forbidden(`Calling ${tool.id} requires the permission(s): ${missing.join(', ')}`);
    }

    // A context (asked for, or the one an API key is bound to) narrows the tools and brings its settings.
    if (context) {
      assertToolInContext(context, tool.id);
      await this.limiter.consumeContext(principal.userId, context);
    }

    const parameters = request.parameters ?? {};
    const isAsync = request.options?.async === true;
    const sessionId = await this.sessionFor(principal, request.context?.sessionId);
    const requestId = request.context?.requestId ?? null;
    const requestHash = requestId === null ? null : fingerprint({ toolId: tool.id, parameters, async: isAsync });
    if (requestId !== null) {
      const earlier = await this.repository.findByRequestId(principal.userId, requestId);
      if (earlier) return this.resume(earlier, requestHash, tool, parameters, principal, meta);
    }

    const rateLimit = await this.limiter.consume(principal.userId, tool);

    const details = this.validator.validateInput(tool, parameters);
    if (details.length > 0) throw AppException.validation(details, `Invalid parameters for ${tool.id}`);

    const now = this.clock.now();
    const execution: ToolExecution = {
      id: newId('exe'),
      toolId: tool.id,
      userId: principal.userId,
      sessionId,
      requestId,
      requestHash,
      status: isAsync ? 'pending' : 'running',
      async: isAsync,
      input: parameters,
      result: null,
      error: null,
      timeoutMs: Math.min(request.options?.timeout ?? context?.settings.defaultTimeoutMs ?? this.defaultTimeoutMs, this.maxTimeoutMs),
      ipAddress: meta.ipAddress,
      userAgent: meta.userAgent,
      createdAt: now,
      startedAt: isAsync ? null : now,
      finishedAt: null,
      durationMs: null,
      attempts: isAsync ? 0 : 1,
    };
    const stored = {
      input: this.recorder.storedInput(parameters),
      payload: isAsync ? JSON.stringify(parameters) : null,
      // The queue runs the call later as the user: an API key's narrower permissions go with it.
      callerPermissions: isAsync && principal.via !== 'jwt' ? JSON.stringify(principal.permissions) : null,
    };

    if (isAsync) {
      const inserted = await this.queue.enqueue(execution, stored);
      if (!inserted.created) return this.replay(inserted.execution, requestHash);
      this.queue.nudge();
      return { execution, rateLimit, replayed: false };
    }

    // The lease lets the queue's sweeper fail this row if the process dies mid-call, and tells a
    // retry whether a live process may still be running it.
    const leaseUntil = this.leaseFrom(now, execution.timeoutMs);
    // Known as this process's own before the row exists: a racing retry must never take it for an orphan.
    const settle = this.track(execution.id);
    // The `running` row goes into the group commit and the tool runs at once (ExecutionRecorder),
    // except with a requestId: the row decides whether this is a new call or a repeat, so it must
    // be committed before the tool runs (a repeat must never run the tool twice).
    const started = this.recorder.start(execution, stored, leaseUntil);
    if (requestId !== null) {
      let created: boolean;
      try {
        created = await this.recorder.created(started);
      } catch (error) {
        settle(null);
        throw error;
      }
      if (!created) {
        settle(null);
        const earlier = await this.repository.findByRequestId(principal.userId, requestId);
        if (!earlier) throw new Error('Idempotent insert found neither a new nor an earlier execution');
        return this.resume(earlier, requestHash, tool, parameters, principal, meta);
      }
    }
    return { execution: await this.run(tool, execution, principal, meta, leaseUntil, settle, started), rateLimit, replayed: false };
  }

  /**
   * An execution for its owner or a holder of admin:executions:read; a key bound to a context
   * sees only executions run in that context's sessions. Anyone else learns nothing (404).
   */
  async find(principal: Principal, executionId: string): Promise<ToolExecution> {
    const execution = await this.repository.findById(executionId);
    if (!execution || !(await this.maySee(principal, execution))) throw AppException.notFound('Execution not found');
    return execution;
  }

  private async maySee(principal: Principal, execution: ToolExecution): Promise<boolean> {
    if (principal.contextId !== undefined) {
      if (execution.userId !== principal.userId || !execution.sessionId) return false;
      return (await this.sessions.findById(execution.sessionId))?.contextId === principal.contextId;
    }
    return execution.userId === principal.userId || principal.permissions.includes(Permission.ADMIN_EXECUTIONS_READ);
  }

  /**
   * Steps 5-7 of a synchronous call this process holds the lease of. When the outcome cannot be
   * recorded because the database is out of reach, the caller gets that error (503, retry), and
   * the outcome, which exists only here, is recorded once the database is back; a retry joins it.
   */
  private async run(
    tool: CatalogTool,
    execution: ToolExecution,
    principal: Principal,
    meta: ExecutionMeta,
    leaseUntil: Date,
    settle: (outcome: ToolExecution | null) => void,
    started: StartedCall,
  ): Promise<ToolExecution> {
    let outcome: RunOutcome;
    try {
      outcome = await this.runner.run(
        tool,
        execution.input,
        { userId: principal.userId, permissions: principal.permissions, idpToken: principal[IDP_SUBJECT_TOKEN] },
        {
          timeoutMs: execution.timeoutMs,
          reportProgress: meta.reportProgress,
          signal: meta.signal,
          relay: meta.relay,
          correlation: meta.correlation,
        },
      );
    } catch (error) {
      settle(null);
      throw error;
    }
    try {
      const recorded = await this.record(execution, outcome, started);
      settle(recorded);
      return recorded;
    } catch (error) {
      if (!isDatabaseUnavailable(error)) {
        settle(null);
        throw error;
      }
      void this.recordWhenBack(execution, outcome, leaseUntil, started).then(settle);
      throw error;
    }
  }

  /** The call as recorded: what it returned, or the row as it stands when another process took it over. */
  private async record(execution: ToolExecution, outcome: RunOutcome, started: StartedCall): Promise<ToolExecution> {
    const finished: ToolExecution = {
      ...execution,
      status: outcome.status,
      result: outcome.result,
      error: outcome.error,
      // The row's start, which every later read of the call answers: its creation for a synchronous call, a
      // take-over's or the queue's claim otherwise (the tool itself starts a moment later; durationMs is its run).
      startedAt: execution.startedAt ?? outcome.startedAt,
      finishedAt: outcome.finishedAt,
      durationMs: outcome.durationMs,
    };
    if (!(await this.recorder.finish(execution, outcome, started))) {
      // The lease was lost: the sweeper failed the row, or a write we thought failed had committed.
      return (await this.repository.findById(execution.id)) ?? finished;
    }
    return finished;
  }

  /**
   * Retries recording an outcome while the lease lasts (after it, the sweeper fails the row as
   * interrupted). Null when it could not be recorded.
   */
  private async recordWhenBack(
    execution: ToolExecution,
    outcome: RunOutcome,
    leaseUntil: Date,
    started: StartedCall,
  ): Promise<ToolExecution | null> {
    for (let waitMs = RECORD_RETRY_MIN_MS; this.clock.now() < leaseUntil; waitMs = Math.min(waitMs * 2, RECORD_RETRY_MAX_MS)) {
      await sleep(waitMs);
      try {
        return await this.record(execution, outcome, started);
      } catch (error) {
        if (!isDatabaseUnavailable(error)) break;
      }
    }
    return null;
  }

  /**
   * A repeated requestId. A finished (or async) execution is returned as it is. A synchronous one
   * still `running` is joined when a process may be running it: this one (wait for its outcome)
   * or another whose lease holds (wait a while for the row to finish, else 503 to retry later).
   * When no process can be running it (this process's row that never ran here, e.g. its INSERT
   * committed but the answer was lost; or another's whose lease expired), the retry takes the row
   * over atomically and runs it now, with the parameters it carries (the same: same hash).
   */
  private async resume(
    earlier: ToolExecution,
    requestHash: string | null,
    tool: CatalogTool,
    parameters: unknown,
    principal: Principal,
    meta: ExecutionMeta,
  ): Promise<ExecutionOutcome> {
    const replayed = this.replay(earlier, requestHash);
    if (earlier.status !== 'running' || earlier.async) return replayed;

    const own = this.calls.get(earlier.id);
    if (own) return this.replay((await own) ?? (await this.current(earlier)), requestHash);

    const lease = await this.repository.leaseOf(earlier.id);
    if (!lease) return this.replay(await this.current(earlier), requestHash);
    const now = this.clock.now();
    const aliveElsewhere = lease.lockedBy !== this.repository.workerId && lease.lockedUntil !== null && lease.lockedUntil > now;
    if (aliveElsewhere) return this.replay(await this.awaitElsewhere(earlier, lease.lockedUntil!), requestHash);

    const leaseUntil = this.leaseFrom(now, earlier.timeoutMs);
    const settle = this.track(earlier.id);
    let taken: boolean;
    try {
      taken = await this.repository.takeOver(earlier.id, now, leaseUntil);
    } catch (error) {
      settle(null);
      throw error;
    }
    if (!taken) {
      settle(null);
      return this.replay(await this.current(earlier), requestHash);
    }
    const execution: ToolExecution = { ...earlier, input: parameters, startedAt: now };
    return {
      execution: await this.run(tool, execution, principal, meta, leaseUntil, settle, StartedCall.written()),
      rateLimit: null,
      replayed: true,
    };
  }

  /** Polls a call another live process holds until it finishes; 503 (retry) if it is still running after a while. */
  private async awaitElsewhere(earlier: ToolExecution, lockedUntil: Date): Promise<ToolExecution> {
    const until = Math.min(lockedUntil.getTime(), this.clock.now().getTime() + JOIN_ELSEWHERE_MAX_MS);
    while (this.clock.now().getTime() < until) {
      await sleep(JOIN_POLL_MS);
      const row = await this.current(earlier);
      if (row.status !== 'running') return row;
    }
    throw new AppException(ErrorCode.SERVICE_UNAVAILABLE, 'The call with this requestId is still running; retry later', 503, [], {
      'retry-after': String(Math.max(1, Math.ceil((lockedUntil.getTime() - this.clock.now().getTime()) / 1000))),
    });
  }

  private async current(earlier: ToolExecution): Promise<ToolExecution> {
    return (await this.repository.findById(earlier.id)) ?? earlier;
  }

  private leaseFrom(now: Date, timeoutMs: number): Date {
    return new Date(now.getTime() + timeoutMs + this.leaseGraceMs);
  }

  /** Registers a synchronous call as this process's own; the returned function settles (and forgets) it. */
  private track(executionId: string): (outcome: ToolExecution | null) => void {
    let resolve!: (outcome: ToolExecution | null) => void;
    this.calls.set(executionId, new Promise((r) => (resolve = r)));
    return (outcome) => {
      this.calls.delete(executionId);
      resolve(outcome);
    };
  }

  private replay(earlier: ToolExecution, requestHash: string | null): ExecutionOutcome {
    if (earlier.requestHash !== requestHash) {
      throw AppException.conflict('This requestId was already used for a different call', ToolsErrorCode.IDEMPOTENCY_KEY_REUSED);
    }
    return { execution: earlier, rateLimit: null, replayed: true };
  }

  /** The session the call counts against: the caller's own (default: the one of its token). */
  private async sessionFor(principal: Principal, requested: string | undefined): Promise<string | null> {
    if (requested === undefined || requested === principal.sessionId) return principal.sessionId || null;
    const session = await this.sessions.findById(requested);
    const foreign =
      !session || session.userId !== principal.userId || (principal.contextId !== undefined && session.contextId !== principal.contextId);
    if (foreign || !(await this.sessions.isActive(requested))) {
      throw new AppException(ToolsErrorCode.INVALID_SESSION, 'context.sessionId is not an active session of the caller', 400, [
        { field: 'context.sessionId', message: 'must be one of your active sessions', code: ToolsErrorCode.INVALID_SESSION },
      ]);
    }
    return requested;
  }

  /** Refusals that concern security (disabled tool, missing permission) are audited; rate limiting and bad input are not. */
  private async auditRefusal(
    principal: Principal,
    tool: CatalogTool,
    meta: ExecutionMeta,
    details: Record<string, unknown>,
  ): Promise<void> {
    await this.audit.recordStandalone(
      auditEvent(AuditAction.TOOL_EXECUTE, meta, {
        userId: principal.userId,
        resource: `tool:${tool.id}`,
        result: 'failure',
        details: { status: 'refused', ...details },
        metadata: { sessionId: principal.sessionId || null },
      }),
    );
  }
}
