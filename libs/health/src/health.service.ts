import { Inject, Injectable } from '@nestjs/common';
import { existsSync } from 'node:fs';
import { DiskHealthIndicator, HealthIndicatorResult, MemoryHealthIndicator, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { APP_CONFIG, AppConfig } from '@app/core';
import { EventLoopMonitor } from './event-loop.monitor';
import { RedisHealthIndicator } from './redis-health.indicator';

export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface ComponentHealth {
  status: HealthStatus;
  [key: string]: unknown;
}

/** Above these a component is degraded (the service still works, but someone should look). */
const HEAP_DEGRADED_BYTES = 1.5 * 1024 ** 3;
const DISK_DEGRADED_RATIO = 0.9;
const EVENT_LOOP_DEGRADED_MS = 200;

/** Extra components (Redis, upstream MCP servers, ...) register here as they arrive. */
export type HealthContributor = () => Promise<Record<string, ComponentHealth>>;

@Injectable()
export class HealthService {
  private readonly contributors: HealthContributor[] = [];

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly db: TypeOrmHealthIndicator,
    private readonly memory: MemoryHealthIndicator,
    private readonly disk: DiskHealthIndicator,
    private readonly eventLoop: EventLoopMonitor,
    private readonly redis: RedisHealthIndicator,
  ) {}

  register(contributor: HealthContributor): void {
    this.contributors.push(contributor);
  }

  async detailed(): Promise<{ status: HealthStatus; components: Record<string, ComponentHealth> }> {
    const [database, memory, disk, redis, ...extra] = await Promise.all([
      this.database(),
      this.heap(),
      this.diskSpace(),
      this.redis.check(),
      ...this.contributors.map((c) => c().catch((): Record<string, ComponentHealth> => ({}))),
    ]);
    const components: Record<string, ComponentHealth> = {
      database,
      memory,
      disk,
      eventLoop: this.loop(),
      redis,
      ...Object.assign({}, ...extra),
    };
    const statuses = Object.values(components).map((c) => c.status);
    const status: HealthStatus =
      database.status === 'unhealthy' ? 'unhealthy' : statuses.some((s) => s !== 'healthy') ? 'degraded' : 'healthy';
    return { status, components };
  }

  private async database(): Promise<ComponentHealth> {
    const started = performance.now();
    const kind = this.config.database.url ? 'postgresql' : 'embedded (PGlite)';
    if (await isUp('database', () => this.db.pingCheck('database', { timeout: 1_000 }))) {
      return { status: 'healthy', kind, latencyMs: Math.round((performance.now() - started) * 100) / 100 };
    }
    return { status: 'unhealthy', kind, error: 'database did not answer' };
  }

  private async heap(): Promise<ComponentHealth> {
    const usage = process.memoryUsage();
    const status: HealthStatus = (await isUp('memory', () => this.memory.checkHeap('memory', HEAP_DEGRADED_BYTES)))
      ? 'healthy'
      : 'degraded';
    return { status, heapUsedBytes: usage.heapUsed, rssBytes: usage.rss, heapDegradedAboveBytes: HEAP_DEGRADED_BYTES };
  }

  private async diskSpace(): Promise<ComponentHealth> {
    const path = existsSync(this.config.dataDir) ? this.config.dataDir : '/';
    const up = await isUp('disk', () => this.disk.checkStorage('disk', { path, thresholdPercent: DISK_DEGRADED_RATIO }));
    return { status: up ? 'healthy' : 'degraded', path, degradedAboveUsedRatio: DISK_DEGRADED_RATIO };
  }

  private loop(): ComponentHealth {
    const figures = this.eventLoop.read();
    return { status: figures.p99Ms > EVENT_LOOP_DEGRADED_MS ? 'degraded' : 'healthy', ...figures };
  }
}

const SEVERITY: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 };

/**
 * What the public may see of the components: their statuses, nothing else. Components named
 * `group:name` (one per upstream server) would still tell their names, so they are folded into
 * one `group` entry with the worst status among them.
 */
export function statusesOnly(components: Record<string, ComponentHealth>): Record<string, { status: HealthStatus }> {
  const result: Record<string, { status: HealthStatus }> = {};
  for (const [name, { status }] of Object.entries(components)) {
    const key = name.includes(':') ? name.slice(0, name.indexOf(':')) : name;
    const seen = result[key]?.status;
    result[key] = { status: seen !== undefined && SEVERITY[seen] > SEVERITY[status] ? seen : status };
  }
  return result;
}

/** Terminus indicators report "down" by result in v11 and by exception in older code paths: accept both. */
async function isUp(key: string, check: () => Promise<HealthIndicatorResult>): Promise<boolean> {
  try {
    return (await check())[key]?.status === 'up';
  } catch {
    return false;
  }
}
