import { availableParallelism, freemem, loadavg, totalmem, uptime as hostUptime } from 'node:os';
import { IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { setImmediate as immediate, setTimeout as delay } from 'node:timers/promises';
import { abortedError, throwIfAborted } from '../provider/tool-error';
import type { ToolCallContext, ToolDefinition } from '../provider/tool-provider';
import type { ToolRuntimeStats } from '../runtime/tool-runtime-stats';
import type { BuiltinTool } from './builtin-tool';

const NS_PER_MS = 1e6;
const MS = { type: 'number', minimum: 0 };
const BYTES = { type: 'integer', minimum: 0 };
const COUNT = { type: 'integer', minimum: 0 };

function object(properties: Record<string, unknown>): Record<string, unknown> {
  return { type: 'object', additionalProperties: false, required: Object.keys(properties), properties };
}

function round(value: number, digits = 3): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** monitoring — process and host figures plus the gateway's own counters. */
export class SystemMetricsTool implements BuiltinTool {
  readonly definition: ToolDefinition = {
    id: 'tool_system_metrics',
    name: 'system_metrics',
    title: 'System metrics',
    description:
      'Process and host figures: CPU (process time and, over sampleMs, process CPU percent; load averages; cores), ' +
      'memory (process and host), uptime, event-loop lag, open sessions and tool executions in flight.',
    version: '1.0.0',
    category: 'monitoring',
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        sampleMs: {
          type: 'integer',
          minimum: 0,
          maximum: 5000,
          default: 100,
          description: 'Window over which process CPU percent is measured; 0 skips it (cpu.processPercent is then null)',
        },
      },
    },
    outputSchema: object({
      timestamp: { type: 'string' },
      cpu: object({
        cores: { type: 'integer', minimum: 1 },
        loadAverage: { type: 'array', items: { type: 'number', minimum: 0 }, minItems: 3, maxItems: 3 },
        processUserMs: MS,
        processSystemMs: MS,
        processPercent: { anyOf: [{ type: 'number', minimum: 0 }, { type: 'null' }] },
      }),
      memory: object({
        process: object({ rss: BYTES, heapTotal: BYTES, heapUsed: BYTES, external: BYTES, arrayBuffers: BYTES }),
        host: object({ total: BYTES, free: BYTES, used: BYTES }),
      }),
      uptime: object({ processSeconds: MS, hostSeconds: MS }),
      eventLoop: object({ lagMs: MS, meanMs: MS, p50Ms: MS, p99Ms: MS, maxMs: MS }),
      gateway: object({ openSessions: COUNT, executionsInFlight: COUNT }),
      runtime: object({ node: { type: 'string' }, platform: { type: 'string' }, arch: { type: 'string' } }),
    }),
    permissions: ['tools:execute'],
    rateLimit: { requests: 60, window: '1m' },
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    enabledByDefault: true,
  };

  /** Runs for the provider's lifetime so lag percentiles describe the process, not just this call. */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });

  constructor(private readonly stats: ToolRuntimeStats) {
    this.loopDelay.enable();
  }

  close(): void {
    this.loopDelay.disable();
  }

  async execute(raw: unknown, ctx: ToolCallContext): Promise<unknown> {
    const input = (raw ?? {}) as { sampleMs?: number };
    const sampleMs = input.sampleMs ?? 100;
    throwIfAborted(ctx.signal);

    // Lag now: how late a callback queued behind the current work actually runs.
    const queued = process.hrtime.bigint();
    await immediate();
    const lagMs = Number(process.hrtime.bigint() - queued) / NS_PER_MS;

    const cpuBefore = process.cpuUsage();
    let processPercent: number | null = null;
    if (sampleMs > 0) {
      const started = process.hrtime.bigint();
      try {
        await delay(sampleMs, undefined, { signal: ctx.signal });
      } catch (error) {
        if (ctx.signal.aborted) throw abortedError(ctx.signal);
        throw error;
      }
      const elapsedUs = Number(process.hrtime.bigint() - started) / 1000;
      const used = process.cpuUsage(cpuBefore);
      processPercent = round(((used.user + used.system) / elapsedUs) * 100, 2);
    }
    const cpu = process.cpuUsage();
    const memory = process.memoryUsage();
    const total = totalmem();
    const free = freemem();
    const histogramMs = (value: number) => (Number.isFinite(value) ? round(value / NS_PER_MS) : 0);

    return {
      timestamp: new Date().toISOString(),
      cpu: {
        cores: availableParallelism(),
        loadAverage: loadavg().map((v) => round(v, 2)),
        processUserMs: round(cpu.user / 1000),
        processSystemMs: round(cpu.system / 1000),
        processPercent,
      },
      memory: {
        process: {
          rss: memory.rss,
          heapTotal: memory.heapTotal,
          heapUsed: memory.heapUsed,
          external: memory.external,
          arrayBuffers: memory.arrayBuffers,
        },
        host: { total, free, used: total - free },
      },
      uptime: { processSeconds: round(process.uptime()), hostSeconds: round(hostUptime()) },
      eventLoop: {
        lagMs: round(lagMs),
        meanMs: this.loopDelay.count > 0 ? histogramMs(this.loopDelay.mean) : 0,
        p50Ms: this.loopDelay.count > 0 ? histogramMs(this.loopDelay.percentile(50)) : 0,
        p99Ms: this.loopDelay.count > 0 ? histogramMs(this.loopDelay.percentile(99)) : 0,
        maxMs: this.loopDelay.count > 0 ? histogramMs(this.loopDelay.max) : 0,
      },
      gateway: { openSessions: await this.stats.openSessions(), executionsInFlight: this.stats.executionsInFlight },
      runtime: { node: process.version, platform: process.platform, arch: process.arch },
    };
  }
}
