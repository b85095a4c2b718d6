import { Logger } from '@nestjs/common';
import { register } from 'prom-client';
import { BackgroundJobs } from '@app/core';
import type { ToolExecutionQueue } from './tool-execution.queue';
import type { ToolExecutionRepository } from './tool-execution.repository';
import { QUEUE_CAPACITY_METRIC, QUEUE_PENDING_METRIC, QUEUE_RUNNING_METRIC, ToolQueueMetrics } from './tool-queue-metrics';

describe('ToolQueueMetrics', () => {
  let pending: number | Error;
  let counts: number;
  let queue: { runningCount: number; capacity: number };
  let jobs: BackgroundJobs;
  let metrics: ToolQueueMetrics;

  beforeEach(() => {
    register.clear();
    pending = 0;
    counts = 0;
    queue = { runningCount: 0, capacity: 4 };
    const repository = {
      countPending: () => {
        counts += 1;
        return pending instanceof Error ? Promise.reject(pending) : Promise.resolve(pending);
      },
    } as unknown as ToolExecutionRepository;
    jobs = new BackgroundJobs();
    metrics = new ToolQueueMetrics(queue as ToolExecutionQueue, repository, jobs);
    metrics.onModuleInit();
  });

  afterEach(() => jobs.stopAll());

  async function scrape(): Promise<Record<string, number>> {
    const all = await register.getMetricsAsJSON();
    const value = (name: string) =>
      (all.find((m) => m.name === name) as { values: Array<{ value: number }> } | undefined)?.values[0]?.value;
    return {
      pending: value(QUEUE_PENDING_METRIC) ?? -1,
      running: value(QUEUE_RUNNING_METRIC) ?? -1,
      capacity: value(QUEUE_CAPACITY_METRIC) ?? -1,
    };
  }

  it('reports the depth last counted, and what this process runs out of its capacity', async () => {
    expect((await scrape()).pending).toBeNaN();
    pending = 7;
    queue.runningCount = 3;
    await metrics.refresh();
    expect(await scrape()).toEqual({ pending: 7, running: 3, capacity: 4 });
    // A scrape reads the last count; it does not query the database itself.
    pending = 9;
    expect((await scrape()).pending).toBe(7);
    expect(counts).toBe(1);
  });

  it('reports NaN, not a stale depth, while the database cannot be read', async () => {
    pending = 5;
    await metrics.refresh();
    pending = new Error('PostgreSQL unavailable: no answer');
    const debug = jest.spyOn(Logger.prototype, 'debug').mockImplementation(() => undefined);
    await metrics.refresh();
    expect(debug).toHaveBeenCalledWith({ err: pending }, 'Could not count the queued tool executions');
    debug.mockRestore();
    expect((await scrape()).pending).toBeNaN();
    pending = 2;
    await metrics.refresh();
    expect((await scrape()).pending).toBe(2);
  });

  it('counts once at start and then on a background job', () => {
    metrics.onApplicationBootstrap();
    expect(counts).toBe(1);
    expect(jobs.list().map((job) => [job.name, job.intervalMs])).toEqual([['tools.queue-depth', 15_000]]);
  });
});
