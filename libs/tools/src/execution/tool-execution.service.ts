import { Inject, Injectable } from '@nestjs/common';
import { AuditService } from '@app/audit';
// Deep imports: @app/contexts' index pulls in ContextsModule, which depends on this module.
import { assertToolInContext } from '@app/contexts/assert-tool-in-context';
import { ContextAccessService } from '@app/contexts/context-access.service';
import { APP_CONFIG, AppConfig, AppException, Clock, newId, Permission, Principal } from '@app/core';
import { SessionService } from '@app/sessions';
import type { CatalogTool } from '../catalog/catalog-tool';
import { ToolCatalogService } from '../catalog/tool-catalog.service';
import { fingerprint } from '../common/fingerprint';
import { RateLimitDecision } from '../rate-limit/rate-limit-store';
import { ToolRateLimiter } from '../rate-limit/tool-rate-limiter';
import { ToolsErrorCode } from '../tool-error-codes';
import { ExecutionRecorder, TOOL_EXECUTE_ACTION } from './execution-recorder';
import type { ExecuteToolRequest, ExecutionMeta, ToolExecution } from './tool-execution';
import { ToolExecutionQueue } from './tool-execution.queue';
import { ToolExecutionRepository } from './tool-execution.repository';
import { ToolRunner } from './tool-runner';
import { ToolSchemaValidator } from './tool-schema-validator';

export interface ExecutionOutcome {
  execution: ToolExecution;
  /** The caller's budget for this tool after the call; null when nothing was counted (a replay). */
  rateLimit: RateLimitDecision | null;
  /** True when `requestId` matched an earlier execution, which is returned instead of a new run. */
  replayed: boolean;
}

/**
 * The one execution pipeline: REST's POST /tools/{id}/execute and the MCP gateway's
 * `tools/call` both come here. In order:
 *   1. the tool exists (404) and is enabled (403 TOOL_DISABLED);
 *   2. the caller holds the tool's permissions (403);
 *   3. the caller's per-tool rate limit (429 with X-RateLimit-* and Retry-After);
 *   4. `parameters` against the tool's input schema (400, one detail per field);
 *   5. the run, under a timeout and an abort signal;
 *   6. the output against the output schema;
 *   7. the record: execution row and audit entry in one transaction, then the session's
 *      counters and the Prometheus metrics (see ExecutionRecorder).
 * A repeated `context.requestId` returns the earlier execution after steps 1 and 2. Async calls
 * stop after step 4 with a `pending` row that the durable queue runs (steps 5-7).
 *
 * The embedded database has one connection, so no transaction is ever open while a tool runs:
 * a single INSERT (the `running` row) before, one short transaction after.
 */
@Injectable()
export class ToolExecutionService {
  private readonly maxTimeoutMs: number;
  private readonly defaultTimeoutMs: number;
  private readonly leaseGraceMs: number;

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
    private readonly contexts: ContextAccessService,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.maxTimeoutMs = config.tools.maxTimeoutMs;
    this.defaultTimeoutMs = config.tools.defaultTimeoutMs;
    this.leaseGraceMs = config.toolExecutions.queueLeaseGraceMs;
  }

  async execute(principal: Principal, toolId: string, request: ExecuteToolRequest, meta: ExecutionMeta): Promise<ExecutionOutcome> {
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

    // A context (asked for, or the one an API key is bound to) narrows the tools and brings its
    // settings. A bound key asking for another context finds none (ContextAccessService: 404).
    const contextId = request.context?.contextId ?? principal.contextId;
    const context = contextId ? await this.contexts.resolveForExecution(principal, contextId) : undefined;
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
      if (earlier) return this.replay(earlier, requestHash);
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
      callerPermissions: isAsync && principal.via === 'api_key' ? JSON.stringify(principal.permissions) : null,
    };

    if (isAsync) {
      const inserted = await this.queue.enqueue(execution, stored);
      if (!inserted.created) return this.replay(inserted.execution, requestHash);
      this.queue.nudge();
      return { execution, rateLimit, replayed: false };
    }

    // The lease lets the queue's sweeper fail this row if the process dies mid-call.
    const leaseUntil = new Date(now.getTime() + execution.timeoutMs + this.leaseGraceMs);
    const inserted = await this.repository.insert(execution, stored, leaseUntil);
    if (!inserted.created) return this.replay(inserted.execution, requestHash);
    return { execution: await this.run(tool, execution, principal, meta), rateLimit, replayed: false };
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

  private async run(tool: CatalogTool, execution: ToolExecution, principal: Principal, meta: ExecutionMeta): Promise<ToolExecution> {
    const outcome = await this.runner.run(
      tool,
      execution.input,
      { userId: principal.userId, permissions: principal.permissions },
      { timeoutMs: execution.timeoutMs, reportProgress: meta.reportProgress, signal: meta.signal },
    );
    const finished: ToolExecution = {
      ...execution,
      status: outcome.status,
      result: outcome.result,
      error: outcome.error,
      startedAt: outcome.startedAt,
      finishedAt: outcome.finishedAt,
      durationMs: outcome.durationMs,
    };
    if (!(await this.recorder.finish(execution, outcome))) {
      // Only a call that outlived its lease gets here; its row has been failed by the sweeper.
      return (await this.repository.findById(execution.id)) ?? finished;
    }
    return finished;
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
    const foreign = !session || session.userId !== principal.userId || (principal.contextId !== undefined && session.contextId !== principal.contextId);
    if (foreign || !(await this.sessions.isActive(requested))) {
      throw new AppException(ToolsErrorCode.INVALID_SESSION, 'context.sessionId is not an active session of the caller', 400, [
        { field: 'context.sessionId', message: 'must be one of your active sessions', code: ToolsErrorCode.INVALID_SESSION },
      ]);
    }
    return requested;
  }

  /** Refusals that concern security (disabled tool, missing permission) are audited; rate limiting and bad input are not. */
  private async auditRefusal(principal: Principal, tool: CatalogTool, meta: ExecutionMeta, details: Record<string, unknown>): Promise<void> {
    await this.audit.recordStandalone({
      action: TOOL_EXECUTE_ACTION,
      userId: principal.userId,
      resource: `tool:${tool.id}`,
      result: 'failure',
      severity: 'warning',
      ipAddress: meta.ipAddress,
      userAgent: meta.userAgent,
      details: { status: 'refused', ...details },
      metadata: { sessionId: principal.sessionId || null },
    });
  }
}
