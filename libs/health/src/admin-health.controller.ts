import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AuditExporter } from '@app/audit';
import { APP_CONFIG, AppConfig, BackgroundJobs, RequirePermissions, Roles } from '@app/core';
import { DetailedHealthDto } from './health.dto';
import { HealthService } from './health.service';
import { ReadinessService } from './readiness.service';

/** The figures behind GET /health/detailed, for administrators: paths, upstreams, errors, process figures. */
@ApiTags('Admin')
@Controller('admin/health')
@Roles('admin')
@RequirePermissions('admin:health:read')
export class AdminHealthController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly health: HealthService,
    private readonly readiness: ReadinessService,
    private readonly jobs: BackgroundJobs,
    private readonly auditExport: AuditExporter,
  ) {}

  @Get()
  @ApiOperation({
    summary: 'Detailed health with figures (Admin only)',
    description:
      "Extension: what GET /health/detailed reports, plus each component's figures and last errors (database kind and " +
      'latency, data directory, Redis state, upstream servers), the process figures and its background jobs (name, interval, ' +
      'last run, last error) and, when audit export is configured, each sink in `metrics.auditExport` (records not yet ' +
      'delivered, cursor position, last delivery, whether this replica exports, consecutive failures, next attempt, last ' +
      'error). Needs admin:health:read.',
  })
  @ApiOkResponse({ description: 'Detailed health status with figures', type: DetailedHealthDto })
  async detailed(): Promise<DetailedHealthDto> {
    const { status, components } = await this.health.detailed();
    const usage = process.memoryUsage();
    const cpu = process.cpuUsage();
    return {
      status,
      timestamp: new Date().toISOString(),
      version: this.config.version,
      components,
      metrics: {
        uptimeSeconds: Math.round(process.uptime()),
        rssBytes: usage.rss,
        heapUsedBytes: usage.heapUsed,
        cpuUserMicros: cpu.user,
        cpuSystemMicros: cpu.system,
        shuttingDown: this.readiness.isShuttingDown,
        backgroundJobs: this.jobs.list(),
        auditExport: this.auditExport.status(),
      },
    };
  }
}
