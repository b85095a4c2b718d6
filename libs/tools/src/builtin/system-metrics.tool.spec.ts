import Ajv from 'ajv';
import { availableParallelism, totalmem } from 'node:os';
import { ToolError } from '../provider/tool-error';
import { ToolRuntimeStats } from '../runtime/tool-runtime-stats';
import { SystemMetricsTool } from './system-metrics.tool';
import { ctx } from './tool-call.test-helpers';

interface Metrics {
  cpu: { cores: number; loadAverage: number[]; processUserMs: number; processPercent: number | null };
  memory: { process: { rss: number; heapUsed: number }; host: { total: number; free: number; used: number } };
  uptime: { processSeconds: number; hostSeconds: number };
  eventLoop: { lagMs: number; meanMs: number; p99Ms: number; maxMs: number };
  gateway: { openSessions: number; executionsInFlight: number };
}

describe('SystemMetricsTool', () => {
  let stats: ToolRuntimeStats;
  let tool: SystemMetricsTool;
  const ajv = new Ajv({ allErrors: true, strict: true });

  beforeEach(() => {
    stats = new ToolRuntimeStats();
    tool = new SystemMetricsTool(stats);
  });

  afterEach(() => tool.close());

  it('reports process and host figures matching the output schema', async () => {
    const output = (await tool.execute({ sampleMs: 50 }, ctx())) as Metrics;
    const validate = ajv.compile(tool.definition.outputSchema);
    expect(validate.errors ?? []).toEqual([]);
    expect(validate(output)).toBe(true);
    expect(output.cpu.cores).toBe(availableParallelism());
    expect(output.cpu.loadAverage).toHaveLength(3);
    expect(output.cpu.processUserMs).toBeGreaterThan(0);
    expect(output.cpu.processPercent).toEqual(expect.any(Number));
    expect(output.memory.host.total).toBe(totalmem());
    expect(output.memory.host.used).toBe(output.memory.host.total - output.memory.host.free);
    expect(output.memory.process.rss).toBeGreaterThan(output.memory.process.heapUsed);
    expect(output.uptime.processSeconds).toBeGreaterThan(0);
    expect(output.eventLoop.lagMs).toBeGreaterThanOrEqual(0);
    expect(output.gateway).toEqual({ openSessions: 0, executionsInFlight: 0 });
  });

  it('skips the CPU sample when asked', async () => {
    const output = (await tool.execute({ sampleMs: 0 }, ctx())) as Metrics;
    expect(output.cpu.processPercent).toBeNull();
  });

  it('sees a blocked event loop', async () => {
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        const until = Date.now() + 200;
        while (Date.now() < until) {
          // keep the loop busy so the delay monitor records it
        }
        resolve();
      }, 20),
    );
    await new Promise((resolve) => setTimeout(resolve, 30));
    const output = (await tool.execute({ sampleMs: 0 }, ctx())) as Metrics;
    expect(output.eventLoop.maxMs).toBeGreaterThanOrEqual(50);
  });

  it('reports the gateway counters it is fed', async () => {
    stats.useOpenSessionsSource(async () => 3);
    const done = stats.executionStarted();
    stats.executionStarted();
    const output = (await tool.execute({ sampleMs: 0 }, ctx())) as Metrics;
    expect(output.gateway).toEqual({ openSessions: 3, executionsInFlight: 2 });
    done();
    done();
    expect(stats.executionsInFlight).toBe(1);
  });

  it('stops sampling when the call is aborted', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    // A 5 s sample that ends ABORTED stopped at the signal.
    await expect(tool.execute({ sampleMs: 5000 }, ctx(controller.signal))).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(tool.execute({}, ctx(AbortSignal.abort()))).rejects.toBeInstanceOf(ToolError);
  });
});
