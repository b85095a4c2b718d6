import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import type { Counter, Histogram } from 'prom-client';
import type { EntityManager } from 'typeorm';
import { AuditAction, AuditEntry, auditEvent, AuditService, sanitizeAuditData } from '@app/audit';
import { APP_CONFIG, AppConfig, isDatabaseUnavailable } from '@app/core';
import { SessionActivityService } from '@app/sessions';
import { observeTraced } from '@app/health';
import { boundedJson } from '../common/stored-json';
import type { ToolExecution } from './tool-execution';
import { ExecutionFinish, ToolExecutionRepository } from './tool-execution.repository';
import { TOOL_DURATION_METRIC, TOOL_EXECUTIONS_METRIC } from './tool-metrics';
import { WriteBatcher } from './write-batcher';
import { UnitOfWork } from '@app/database';

/** Calls recorded in one transaction at most (bounds its statements' size and its lock time). */
const MAX_BATCH = 256;

/**
 * Step 7 of the pipeline, shared by synchronous calls and the queue: the execution row and its
 * audit record in one short transaction (never open while a tool runs), then the session's
 * counters and the Prometheus figures.
 *
 * Calls that finish while a recording transaction is in progress are recorded together in the
 * next one (group commit): one UPDATE of their rows, which also takes the audit chain lock, and
 * one INSERT of their audit records. Every call still commits with its audit record and answers
 * only after that commit; the chain lock, the dominant cost under load, is taken once per batch
 * instead of once per call. A failing batch is retried call by call (WriteBatcher).
 *
 * The counters go through SessionActivityService's write-behind, not into that transaction:
 * every call of a session updates the same `sessions` row, and concurrent calls of one session
 * (an agent fanning out) queued on its row lock inside their transactions, holding the audit
 * chain lock up behind them (measured on the tool benchmark, P2). A crash loses at most the last
 * flush interval of counts, never an execution or its audit record.
 */
@Injectable()
export class ExecutionRecorder {
  private readonly logger = new Logger(ExecutionRecorder.name);
  private readonly maxStoredBytes: number;
  private readonly finishes = new WriteBatcher(
    (finished: Array<{ execution: ToolExecution; finish: ExecutionFinish }>) => this.writeFinishes(finished),
    MAX_BATCH,
    isDatabaseUnavailable,
  );

  constructor(
    private readonly unitOfWork: UnitOfWork,
    private readonly repository: ToolExecutionRepository,
    private readonly audit: AuditService,
    private readonly activity: SessionActivityService,
    @InjectMetric(TOOL_EXECUTIONS_METRIC) private readonly executions: Counter<string>,
    @InjectMetric(TOOL_DURATION_METRIC) private readonly duration: Histogram<string>,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.maxStoredBytes = config.toolExecutions.maxStoredBytes;
  }

  /** What is kept of a call's input: secrets redacted, size bounded (the row and its readers outlive the call). */
  storedInput(input: unknown): string {
    return boundedJson(sanitizeAuditData(input), this.maxStoredBytes);
  }

  /**
   * Records the end of a call this process ran. Returns false when the lease was lost (another
   * process took the row over): then nothing is written and the caller must not report success.
   * Resolves only once the row and its audit record are committed.
   */
  async finish(execution: ToolExecution, outcome: Omit<ExecutionFinish, 'storedResult'> & { result: unknown }): Promise<boolean> {
    const finish: ExecutionFinish = {
      status: outcome.status,
      error: outcome.error,
      finishedAt: outcome.finishedAt,
      durationMs: outcome.durationMs,
      storedResult: outcome.result === null && outcome.status === 'failed' ? null : boundedJson(outcome.result, this.maxStoredBytes),
    };
    const recorded = await this.finishes.submit({ execution, finish });
    if (!recorded) {
      this.logger.warn(
        { executionId: execution.id, tool: execution.toolId },
        'Execution lease was lost before the call finished; its outcome is discarded',
      );
      return false;
    }
    this.countInSession(execution.sessionId, finish.status === 'failed');
    this.count(execution.toolId, finish.status, finish.durationMs);
    return true;
  }

  /** One transaction for calls that finished together: their rows, then their audit records, chained in order. */
  private async writeFinishes(finished: Array<{ execution: ToolExecution; finish: ExecutionFinish }>): Promise<boolean[]> {
    return this.unitOfWork.run(async (manager) => {
      const written = await this.repository.finishMany(manager, finished);
      const entries = finished
        .filter((_, i) => written[i])
        .map(({ execution, finish }) =>
          this.auditEntry({ ...execution, status: finish.status, error: finish.error, durationMs: finish.durationMs }),
        );
      await this.audit.recordMany(manager, entries, { chainLocked: true });
      return written;
    });
  }

  /** Audits executions the repository failed as abandoned, in the transaction that failed them. */
  async auditAbandoned(manager: EntityManager, failed: ToolExecution[]): Promise<void> {
    for (const execution of failed) await this.audit.record(manager, this.auditEntry(execution));
  }

  /** Counts abandoned executions (after their transaction committed). */
  countAbandoned(failed: ToolExecution[]): void {
    for (const execution of failed) {
      this.countInSession(execution.sessionId, true);
      this.count(execution.toolId, 'failed', execution.durationMs);
    }
  }

  private countInSession(sessionId: string | null, failed: boolean): void {
    if (sessionId) this.activity.count(sessionId, { toolExecutions: 1, errors: failed ? 1 : 0 });
  }

  private count(toolId: string, status: 'completed' | 'failed', durationMs: number | null): void {
    this.executions.inc({ tool: toolId, status });
    if (durationMs !== null) observeTraced(this.duration, { tool: toolId }, durationMs / 1000);
  }

  private auditEntry(
    execution: Pick<
      ToolExecution,
      | 'id'
      | 'toolId'
      | 'userId'
      | 'sessionId'
      | 'requestId'
      | 'status'
      | 'error'
      | 'durationMs'
      | 'async'
      | 'attempts'
      | 'ipAddress'
      | 'userAgent'
    >,
  ): AuditEntry {
    const failed = execution.status === 'failed';
    return auditEvent(AuditAction.TOOL_EXECUTE, execution, {
      userId: execution.userId,
      resource: `tool:${execution.toolId}`,
      result: failed ? 'failure' : 'success',
      details: {
        executionId: execution.id,
        status: execution.status,
        durationMs: execution.durationMs,
        async: execution.async,
        attempts: execution.attempts,
        // Not `code`: a top-level `code` in details is redacted as an MFA code (audit-sanitizer SECRET_PATHS).
        ...(execution.error ? { errorCode: execution.error.code, errorMessage: execution.error.message } : {}),
      },
      metadata: { sessionId: execution.sessionId, requestId: execution.requestId },
    });
  }
}
