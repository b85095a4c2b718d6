import { Injectable, Logger, OnApplicationBootstrap, OnModuleInit } from '@nestjs/common';
import { BackgroundJobs } from '@app/core';
import { stateGauge } from '@app/health';
import { ToolExecutionQueue } from './tool-execution.queue';
import { ToolExecutionRepository } from './tool-execution.repository';

export const QUEUE_PENDING_METRIC = 'tool_queue_pending';
export const QUEUE_RUNNING_METRIC = 'tool_queue_running';
export const QUEUE_CAPACITY_METRIC = 'tool_queue_concurrency';

/** How often the queue's depth is read from the database (one indexed count, per replica). */
export const QUEUE_DEPTH_REFRESH_MS = 15_000;

/**
 * The async queue's gauges: its depth (`tool_queue_pending`, the same on every replica: the queue
 * is the tool_executions table), and per process what runs (`tool_queue_running`) out of how many
 * may (`tool_queue_concurrency`). The depth is counted in the background and a scrape reads the
 * last count, so a slow or unreachable database never holds up GET /metrics; while it cannot be
 * read (or before the first count) the value is NaN rather than a stale number.
 */
@Injectable()
export class ToolQueueMetrics implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger(ToolQueueMetrics.name);
  private pending: number | undefined;

  constructor(
    private readonly queue: ToolExecutionQueue,
    private readonly repository: ToolExecutionRepository,
    private readonly jobs: BackgroundJobs,
  ) {}

  onModuleInit(): void {
    stateGauge({
      name: QUEUE_PENDING_METRIC,
      help: 'Async tool executions waiting to start, across all replicas (counted every 15 s)',
      read: (gauge) => gauge.set(this.pending ?? Number.NaN),
    });
    stateGauge({
      name: QUEUE_RUNNING_METRIC,
      help: 'Async tool executions running in this process',
      read: (gauge) => gauge.set(this.queue.runningCount),
    });
    stateGauge({
      name: QUEUE_CAPACITY_METRIC,
      help: 'Async tool executions this process runs at once at most (TOOLS_QUEUE_CONCURRENCY; 0 when TOOLS_QUEUE_ENABLED=false)',
      read: (gauge) => gauge.set(this.queue.capacity),
    });
  }

  onApplicationBootstrap(): void {
    void this.refresh();
    this.jobs.every('tools.queue-depth', QUEUE_DEPTH_REFRESH_MS, () => this.refresh());
  }

  /** Counts the waiting executions now; on failure the depth is unknown until the next count. */
  async refresh(): Promise<void> {
    try {
      this.pending = await this.repository.countPending();
    } catch (error) {
      this.pending = undefined;
      this.logger.debug({ err: error }, 'Could not count the queued tool executions');
    }
  }
}
