import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectMetric } from '@willsoto/nestjs-prometheus';
import type { Counter, Histogram } from 'prom-client';
import type { EntityManager } from 'typeorm';
import {
  assertChainLockIsolation,
  AUDIT_CHAIN_ISOLATION_SQL,
  AUDIT_CHAIN_LOCK_SQL,
  AuditAction,
  AuditEntry,
  auditEvent,
  AuditService,
  sanitizeAuditData,
} from '@app/audit';
import { APP_CONFIG, AppConfig, isDatabaseUnavailable } from '@app/core';
import { SessionActivityService } from '@app/sessions';
import { observeTraced } from '@app/health';
import { boundedJson } from '../common/stored-json';
import type { ToolExecution } from './tool-execution';
import { ExecutionFinish, NewExecution, StoredExecution, ToolExecutionRepository } from './tool-execution.repository';
import { TOOL_DURATION_METRIC, TOOL_EXECUTIONS_METRIC } from './tool-metrics';
import { BatchTicket, WriteBatcher } from './write-batcher';
import { UnitOfWork } from '@app/database';

/** Items (rows, outcomes, audit records) written in one transaction at most (bounds its statements' size and its lock time). */
const MAX_BATCH = 256;
/**
 * Group-commit transactions in progress at the same time at most. They serialise on the audit
 * chain lock, but only from their UPDATE on: a second one sends its BEGIN and INSERT while the
 * first holds the lock, and commits right after it. More only queue on the lock (and the pool).
 */
const MAX_IN_FLIGHT = 2;
/**
 * How long a synchronous call's `running` row waits before it goes into the group commit. A call
 * that ends within it (an upstream's answer takes a few milliseconds) writes one row, final, with
 * its audit record, instead of an INSERT and then an UPDATE (which cost a federated call's database
 * more than twice a built-in call's: issue 18). A crash within it leaves no row, and the caller no
 * answer; a longer call gets its leased row as before, for the sweeper.
 */
export const START_ROW_DELAY_MS = 100;

/** What goes into the group commit. */
type GroupItem =
  /** A synchronous call's `running` row, leased to this process. */
  | { kind: 'start'; row: NewExecution }
  /** A call that ended before its start row was written: one row, final, and its audit record. */
  | { kind: 'once'; row: NewExecution & { finish: ExecutionFinish } }
  /** The outcome of a call whose row is written: the UPDATE, and its audit record. */
  | { kind: 'finish'; execution: ToolExecution; finish: ExecutionFinish }
  /** An audit record of something else that must commit before it is answered (federated reads). */
  | { kind: 'audit'; entry: AuditEntry };

/**
 * The start row of one synchronous call, as far as this process knows: waiting out
 * START_ROW_DELAY_MS (not in the group commit yet), queued (the call's outcome may take its
 * place), written, or not written (its write failed: the outcome goes in as the call's one row).
 */
export class StartedCall {
  /** @internal */
  state: 'delayed' | 'queued' | 'written' | 'absent';
  /** @internal The start row's place in the group commit, once it went there. */
  ticket: BatchTicket<GroupItem, boolean> | null = null;
  /** While delayed: the timer that queues the row, and where it goes. */
  private delay: { timer: NodeJS.Timeout; enqueue: () => BatchTicket<GroupItem, boolean> } | null = null;

  /** @internal */
  constructor(readonly row: NewExecution | null) {
    this.state = row ? 'delayed' : 'written';
  }

  /** A row that is already there (a call taken over from a dead process). */
  static written(): StartedCall {
    return new StartedCall(null);
  }

  /** @internal Queues the row through `enqueue` after `ms`, unless queueNow() or undelay() comes first. */
  delayFor(ms: number, enqueue: () => BatchTicket<GroupItem, boolean>): void {
    // Never what keeps the process up: a shutdown waits for its calls, whose outcomes write the row.
    this.delay = { timer: setTimeout(() => this.queueNow(), ms).unref(), enqueue };
  }

  /** @internal Queues the row now if it is still delayed. */
  queueNow(): void {
    const enqueue = this.delay?.enqueue;
    if (!enqueue || !this.undelay()) return;
    this.state = 'queued';
    this.ticket = enqueue();
    // Whoever needs the outcome awaits it (created(), finish()); a failure nobody awaits yet is not unhandled.
    this.ticket.result.catch(() => undefined);
  }

  /** @internal Cancels the delay (the caller writes the row itself): true when it was still pending. */
  undelay(): boolean {
    if (this.state !== 'delayed' || !this.delay) return false;
    clearTimeout(this.delay.timer);
    this.delay = null;
    return true;
  }
}

/**
 * Step 7 of the pipeline, shared by synchronous calls and the queue: the execution row and its
 * audit record in one short transaction (never open while a tool runs), then the session's
 * counters and the Prometheus figures.
 *
 * Group commit (one WriteBatcher, up to MAX_IN_FLIGHT transactions at once): what arrives while
 * a transaction is in progress goes into the next one: the `running` rows of calls that start
 * (one INSERT), the outcomes of calls that finished (one UPDATE, which also takes the audit chain
 * lock) and the audit records (one INSERT, chained in order). A synchronous call does not wait
 * for its `running` row: its tool runs at once, and a call that ends before that row went to the
 * database (an in-process tool, or any call under load) replaces it in the queue by its one
 * final row and audit record. Every call still commits with its audit record and answers only
 * after that commit; the chain lock, the dominant cost under load, is taken once per batch
 * instead of once per call. A failing batch is retried item by item (WriteBatcher).
 *
 * A crash mid-call therefore leaves either no row (the caller got no answer) or a `running` row
 * whose lease the sweeper fails once it expires; never an answered call without its rows.
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
  private readonly group = new WriteBatcher(
    (items: GroupItem[]) => this.writeGroup(items),
    MAX_BATCH,
    isDatabaseUnavailable,
    MAX_IN_FLIGHT,
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
   * A synchronous call's `running` row, leased to this process until `lockedUntil`: it goes into
   * the group commit after START_ROW_DELAY_MS unless the call ended first (then finish() writes the
   * call's one row), or at once for a caller that waits for it (created()). Returns at once: the
   * tool may run before the row is written.
   */
  start(execution: ToolExecution, stored: StoredExecution, lockedUntil: Date): StartedCall {
    const started = new StartedCall({ execution, stored, lockedUntil });
    started.delayFor(START_ROW_DELAY_MS, () => this.group.enqueue({ kind: 'start', row: started.row! }));
    return started;
  }

  /**
   * Waits for the start row (queued at once if it was still delayed): true once it is committed,
   * false when the caller's requestId was taken (nothing inserted). For calls whose row must exist
   * before their tool runs.
   */
  async created(started: StartedCall): Promise<boolean> {
    started.queueNow();
    if (!started.ticket) return true;
    try {
      const created = await started.ticket.result;
      started.state = created ? 'written' : 'absent';
      return created;
    } catch (error) {
      started.state = 'absent';
      throw error;
    }
  }

  /** Records an audit record through the group commit; resolves once it is committed. */
  async recordAudit(entry: AuditEntry): Promise<void> {
    await this.group.submit({ kind: 'audit', entry });
  }

  /**
   * Records the end of a call this process ran. Returns false when the lease was lost (another
   * process took the row over, or an earlier attempt's write committed): then nothing is written
   * and the caller must not report success. Resolves only once the row and its audit record are
   * committed.
   */
  async finish(
    execution: ToolExecution,
    outcome: Omit<ExecutionFinish, 'storedResult'> & { result: unknown },
    started: StartedCall = StartedCall.written(),
  ): Promise<boolean> {
    const finish: ExecutionFinish = {
      status: outcome.status,
      error: outcome.error,
      finishedAt: outcome.finishedAt,
      durationMs: outcome.durationMs,
      storedResult: outcome.result === null && outcome.status === 'failed' ? null : boundedJson(outcome.result, this.maxStoredBytes),
    };
    const recorded = await this.writeFinish(execution, finish, started);
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

  /** The outcome's write: in place of the start row while that is queued, else after it (it must be committed first). */
  private async writeFinish(execution: ToolExecution, finish: ExecutionFinish, started: StartedCall): Promise<boolean> {
    // Ended within the delay: the start row never went anywhere, the call's one row goes instead.
    if (started.undelay()) started.state = 'absent';
    if (started.state === 'queued' && started.ticket && started.row) {
      const once = { ...started.row, lockedUntil: null, finish };
      if (started.ticket.replace({ kind: 'once', row: once })) return this.settle(started, started.ticket.result);
      try {
        started.state = (await started.ticket.result) ? 'written' : 'absent';
      } catch {
        started.state = 'absent';
      }
    }
    if (started.state === 'absent' && started.row) {
      // The start row was never written (the call ended within its delay, or its write failed): the call's one row, final.
      return this.settle(started, this.group.submit({ kind: 'once', row: { ...started.row, lockedUntil: null, finish } }));
    }
    return this.group.submit({ kind: 'finish', execution, finish });
  }

  /** A `once` write: on success the row is there; when it fails, a retry writes it again (or finds it written). */
  private async settle(started: StartedCall, write: Promise<boolean>): Promise<boolean> {
    try {
      const written = await write;
      started.state = 'written';
      return written;
    } catch (error) {
      started.state = 'absent';
      throw error;
    }
  }

  /**
   * One batch of the group commit. Only start rows: one INSERT, no transaction, no chain lock.
   * With no outcome of an already written row (the common case under load: calls that ended
   * before their start rows were written): BEGIN and the chain lock in one round trip, then one
   * statement for the rows and their audit records (insertManyAudited), COMMIT. Otherwise one
   * transaction: the INSERT of new rows and the UPDATE of finished ones (the first of them to
   * write a row takes the chain lock), then the audit records of the calls written and the other
   * records, in order.
   */
  private async writeGroup(items: GroupItem[]): Promise<boolean[]> {
    const rows = items.flatMap((item) => (item.kind === 'start' || item.kind === 'once' ? [item.row] : []));
    if (items.every((item) => item.kind === 'start')) return this.repository.insertMany(null, rows);
    // Straight through pg (runSql): TypeORM's query runner (its events, result and error wrapping per statement) was
    // ~35 µs of CPU per call in P3's profile.
    if (items.every((item) => item.kind !== 'finish')) {
      return this.unitOfWork.runSql(
        async (tx, [lock]) => {
          assertChainLockIsolation((lock as { isolation?: unknown } | undefined)?.isolation);
          // The records as they are if every row goes in; the statement inserts them only then.
          const written = await this.repository.insertManyAudited(tx, rows, (first, condition) =>
            this.audit.linkedInsert(
              this.auditEntries(items, () => true),
              first,
              condition,
            ),
          );
          let next = 0;
          const results = items.map((item) => (item.kind === 'audit' ? true : written.inserted[next++]));
          // A row was there already (a retry's), or another writer moved the chain head: the records of the rows written.
          if (!written.audited) {
            await this.audit.recordMany(
              tx,
              this.auditEntries(items, (i) => results[i]),
              { chainLocked: true },
            );
          }
          return results;
        },
        { withBegin: `SELECT ${AUDIT_CHAIN_LOCK_SQL} AS chain_locked, ${AUDIT_CHAIN_ISOLATION_SQL} AS isolation` },
      );
    }
    return this.unitOfWork.runSql(async (manager) => {
      // The INSERT (else the UPDATE) takes the audit chain lock: no statement of its own for it.
      const inserted = rows.length > 0 ? await this.repository.insertMany(manager, rows, { lockChain: true }) : [];
      const finishes = items.flatMap((item) => (item.kind === 'finish' ? [{ execution: item.execution, finish: item.finish }] : []));
      const updated = finishes.length > 0 ? await this.repository.finishMany(manager, finishes) : [];
      let nextInserted = 0;
      let nextUpdated = 0;
      const results = items.map((item) =>
        item.kind === 'audit' ? true : item.kind === 'finish' ? updated[nextUpdated++] : inserted[nextInserted++],
      );
      await this.audit.recordMany(
        manager,
        this.auditEntries(items, (i) => results[i]),
        {
          chainLocked: inserted.some(Boolean) || updated.some(Boolean),
        },
      );
      return results;
    });
  }

  /** The batch's audit records, in order: the other records, and those of the calls whose row was written (`written(index)`). */
  private auditEntries(items: GroupItem[], written: (index: number) => boolean): AuditEntry[] {
    const entries: AuditEntry[] = [];
    items.forEach((item, i) => {
      if (item.kind === 'audit') entries.push(item.entry);
      else if (item.kind !== 'start' && written(i)) {
        const { execution, finish } = item.kind === 'finish' ? item : item.row;
        entries.push(this.auditEntry({ ...execution, status: finish.status, error: finish.error, durationMs: finish.durationMs }));
      }
    });
    return entries;
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
