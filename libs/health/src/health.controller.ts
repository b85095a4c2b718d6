import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { APP_CONFIG, AppConfig, Public } from '@app/core';
import { DetailedHealthDto, HealthDto, ReadinessDto } from './health.dto';
import { HealthService } from './health.service';
import { ReadinessService } from './readiness.service';

@ApiTags('Health')
@Public()
@Controller()
export class HealthController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly health: HealthService,
    private readonly readiness: ReadinessService,
  ) {}

  /** Liveness: the process answers. Never touches the database, so a database outage never restarts pods. */
  @Get('health')
  @ApiOkResponse({ description: 'Service healthy', type: HealthDto })
  live(): HealthDto {
    return { status: 'healthy', timestamp: new Date().toISOString(), version: this.config.version };
  }

  @Get('health/detailed')
  @ApiOkResponse({ description: 'Detailed health status', type: DetailedHealthDto })
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
      },
    };
  }

  @Get('ready')
  @ApiOkResponse({ description: 'Service ready', type: ReadinessDto })
  @ApiServiceUnavailableResponse({ description: 'Service not ready', type: ReadinessDto })
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<ReadinessDto> {
    const ready = await this.readiness.isReady();
    reply.status(ready ? 200 : 503);
    return { ready, timestamp: new Date().toISOString() };
  }
}
