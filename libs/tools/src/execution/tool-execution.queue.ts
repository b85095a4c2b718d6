import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import {
  APP_CONFIG,
  AppConfig,
  AppException,
  BackgroundJob,
  BackgroundJobs,
  Clock,
  ErrorCode,
  holdsAll,
  resolvePermissions,
} from '@app/core';
import { UsersService } from '@app/users';
import type { CatalogTool } from '../catalog/catalog-tool';
import { ToolCatalogService } from '../catalog/tool-catalog.service';
import { ExecutionFailureCode, ToolsErrorCode } from '../tool-error-codes';
import { ExecutionRecorder } from './execution-recorder';
import type { ExecutionError, ToolExecution } from './tool-execution';
import { StoredExecution, ToolExecutionRepository } from './tool-execution.repository';
import { RunCaller, RunOutcome, ToolRunner } from './tool-runner';
import { ToolSchemaValidator } from './tool-schema-validator';
import { UnitOfWork } from '@app/database';

/** How long shutdown waits for running async calls before cancelling them back into the queue. */
const SHUTDOWN_WAIT_MS = 5_000;
const ABANDONED_BATCH = 50;

/**
 * The durable queue of async executions. The queue is the `tool_executions` table: each process
 * polls it (every TOOLS_QUEUE_POLL_MS, and at once when it accepts a call), claims rows with
 * FOR UPDATE SKIP LOCKED under a lease of timeout + TOOLS_QUEUE_LEASE_GRACE_MS, runs them and records the
 * outcome. A process that dies leaves its lease to expire; the row is then claimed again (its
 * `attempts` grows) until TOOLS_QUEUE_MAX_ATTEMPTS, after which it is failed and audited. A
 * process that stops cleanly cancels what it runs and hands the rows back.
 *
 * Fairness: a free worker takes the oldest row of the user with the fewest calls running (see
 * ToolExecutionRepository.claimNext), and a user may have at most TOOLS_QUEUE_MAX_PENDING_PER_USER
 * calls waiting; beyond that a submission is refused (429, Retry-After) before anything is stored.
 */
@Injectable()
export class ToolExecutionQueue implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(ToolExecutionQueue.name);
  private readonly settings: AppConfig['toolExecutions'];
  private readonly running = new Map<string, Promise<void>>();
  /** Set when shutdown begins: no more claims. */
  private draining = false;
  /** Fired when shutdown stops waiting: cancels the calls still running. */
  private readonly stopping = new AbortController();
  private timer: BackgroundJob | undefined;
  private polling: Promise<void> | undefined;
  private pollAgain = false;
  /** Per user, the admission in progress: a user's check-then-insert runs one at a time in this process. */
  private readonly admitting = new Map<string, Promise<unknown>>();
  private readonly defaultTimeoutMs: number;

  constructor(
    private readonly unitOfWork: UnitOfWork,
    private readonly repository: ToolExecutionRepository,
    private readonly recorder: ExecutionRecorder,
    private readonly runner: ToolRunner,
    private readonly catalog: ToolCatalogService,
    private readonly validator: ToolSchemaValidator,
    private readonly users: UsersService,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly jobs: BackgroundJobs,
  ) {
    this.settings = config.toolExecutions;
    this.defaultTimeoutMs = config.tools.defaultTimeoutMs;
  }

  get enabled(): boolean {
    return this.settings.queueEnabled;
  }

  /** Async executions this process runs now. */
  get runningCount(): number {
    return this.running.size;
  }

  /** How many async executions this process runs at once at most (0 when it runs none). */
  get capacity(): number {
    return this.enabled ? this.settings.queueConcurrency : 0;
  }

  onApplicationBootstrap(): void {
    if (!this.enabled) {
      this.logger.log('Async tool queue disabled in this process (TOOLS_QUEUE_ENABLED=false)');
      return;
    }
    // Not awaited: with migrations pending the catalogue loads later, and start-up must not wait for it.
    void this.catalog.whenReady().then(() => {
      if (this.draining) return;
      this.timer = this.jobs.every('tools.queue-poll', this.settings.queuePollMs, () => this.nudge());
      this.nudge();
    });
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.draining = true;
    this.timer?.stop();
    this.timer = undefined;
    const inFlight = [...this.running.values()];
    if (inFlight.length > 0) {
      const waited = await Promise.race([
        Promise.allSettled(inFlight).then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), SHUTDOWN_WAIT_MS).unref()),
      ]);
      if (!waited)
        this.logger.warn({ executions: [...this.running.keys()] }, 'Cancelling running async executions; they return to the queue');
    }
    this.stopping.abort();
    await this.polling;
    await Promise.allSettled([...this.running.values()]);
  }

  /**
   * Stores a new async execution if its user has room in the queue; throws the contract's 429
   * (QUEUE_FULL, with Retry-After) otherwise. Within a process a user's admissions are serialised,
   * so concurrent submissions cannot all see the same count; across replicas each may let one more in.
   */
  async enqueue(execution: ToolExecution, stored: StoredExecution): Promise<{ execution: ToolExecution; created: boolean }> {
    const userId = execution.userId;
    const previous = this.admitting.get(userId) ?? Promise.resolve();
    const admission = previous
      .catch(() => undefined)
      .then(async () => {
        const queued = await this.repository.queuedBy(userId);
        if (queued.pending >= this.settings.queueMaxPendingPerUser) throw this.queueFull(queued.nextDeadline);
        return this.repository.insert(execution, stored, null);
      });
    this.admitting.set(userId, admission);
    try {
      return await admission;
    } finally {
      if (this.admitting.get(userId) === admission) this.admitting.delete(userId);
    }
  }

  private queueFull(nextDeadline: Date | null): AppException {
    // When one of the user's running calls must have ended, one of their waiting ones can start.
    const waitMs = nextDeadline ? nextDeadline.getTime() - this.clock.now().getTime() : this.defaultTimeoutMs;
    const retryAfter = String(Math.min(3600, Math.max(1, Math.ceil(waitMs / 1000))));
    return new AppException(
      ToolsErrorCode.QUEUE_FULL,
      `You have ${this.settings.queueMaxPendingPerUser} async executions waiting to start; submit more once some have started`,
      429,
      [],
      { 'Retry-After': retryAfter },
    );
  }

  /** Looks for work now (called on a timer and whenever this process accepts an async call). */
  nudge(): void {
    if (!this.enabled || this.draining) return;
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    this.polling = this.poll()
      .catch((error: unknown) => this.logger.warn({ err: error }, 'Async tool queue poll failed'))
      .finally(() => {
        this.polling = undefined;
        if (this.pollAgain) {
          this.pollAgain = false;
          this.nudge();
        }
      });
  }

  private async poll(): Promise<void> {
    await this.failAbandoned();
    while (!this.draining && this.running.size < this.settings.queueConcurrency) {
      const execution = await this.repository.claimNext(this.clock.now(), this.settings.queueLeaseGraceMs, this.settings.queueMaxAttempts);
      if (!execution) return;
      const work = this.process(execution)
        .catch((error: unknown) => this.logger.error({ err: error, executionId: execution.id }, 'Async execution could not be recorded'))
        .finally(() => {
          this.running.delete(execution.id);
          this.nudge();
        });
      this.running.set(execution.id, work);
    }
  }

  /** Fails (and audits) rows that can no longer finish: see ToolExecutionRepository.failAbandoned. */
  private async failAbandoned(): Promise<void> {
    const failed = await this.unitOfWork.run(async (manager) => {
      const rows = await this.repository.failAbandoned(
        manager,
        this.clock.now(),
        this.settings.queueMaxAttempts,
        {
          interrupted: { code: ExecutionFailureCode.INTERRUPTED, message: 'The server stopped before the call finished' },
          exhausted: {
            code: ExecutionFailureCode.ATTEMPTS_EXHAUSTED,
            message: `The call did not finish in ${this.settings.queueMaxAttempts} attempt(s)`,
          },
        },
        ABANDONED_BATCH,
      );
      await this.recorder.auditAbandoned(manager, rows);
      return rows;
    });
    for (const execution of failed) {
      this.logger.warn(
        { executionId: execution.id, tool: execution.toolId, attempts: execution.attempts },
        'Abandoned tool execution failed',
      );
    }
    this.recorder.countAbandoned(failed);
  }

  /** Runs one claimed execution, re-checking what may have changed since it was accepted. */
  private async process(execution: ToolExecution): Promise<void> {
    const checked = await this.check(execution);
    const outcome =
      'refused' in checked
        ? checked.refused
        : await this.runner.run(checked.tool, execution.input, checked.caller, {
            timeoutMs: execution.timeoutMs,
            signal: this.stopping.signal,
          });
    if (outcome.cancelled) {
      await this.repository.release(execution);
      return;
    }
    await this.recorder.finish(execution, outcome);
  }

  /**
   * Steps 1, 2 and 4 again, as of now: the tool may have been disabled or removed, the caller
   * suspended or stripped of a permission, the schema changed. The caller's permissions are read
   * afresh (the tool may make finer checks with them), within an API key's if one queued the call.
   */
  private async check(execution: ToolExecution): Promise<{ refused: RunOutcome } | { tool: CatalogTool; caller: RunCaller }> {
    const refuse = (error: ExecutionError) => {
      const now = this.clock.now();
      const refused: RunOutcome = {
        status: 'failed',
        result: null,
        error,
        startedAt: now,
        finishedAt: now,
        durationMs: 0,
        cancelled: false,
      };
      return { refused };
    };
    const tool = this.catalog.find(execution.toolId);
    if (!tool || !tool.available)
      return refuse({ code: ExecutionFailureCode.TOOL_UNAVAILABLE, message: 'The tool is no longer available' });
    if (!tool.enabled) return refuse({ code: ExecutionFailureCode.TOOL_DISABLED, message: 'The tool was disabled before the call ran' });
    const user = await this.users.accessState(execution.userId);
    if (!user || user.status !== 'active')
      return refuse({ code: ExecutionFailureCode.FORBIDDEN, message: 'The caller is no longer active' });
    const own = resolvePermissions(user.roles, user.permissions);
    const narrowed = execution.callerPermissions;
    const permissions = narrowed ? own.filter((permission) => narrowed.includes(permission)) : own;
    if (!holdsAll(permissions, tool.permissions)) {
      return refuse({ code: ExecutionFailureCode.FORBIDDEN, message: "The caller no longer holds the tool's permissions" });
    }
    const details = this.validator.validateInput(tool, execution.input);
    if (details.length > 0) {
      return refuse({ code: ErrorCode.VALIDATION_ERROR, message: "The parameters no longer match the tool's input schema", details });
    }
    return { tool, caller: { userId: execution.userId, permissions } };
  }
}
