import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { APP_CONFIG, AppConfig, Public } from '@app/core';
import { DetailedHealthDto, HealthDto, ReadinessDto } from './health.dto';
import { HealthService, statusesOnly } from './health.service';
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
  @ApiOperation({
    summary: 'Liveness check',
    description: 'The process answers; never touches the database, so a database outage never restarts pods.',
  })
  @ApiOkResponse({ description: 'Service healthy', type: HealthDto })
  live(): HealthDto {
    return { status: 'healthy', timestamp: new Date().toISOString(), version: this.config.version };
  }

  /**
   * Anyone may ask: each component's status and nothing else. Paths, upstream names, errors and
   * process figures help an attacker map the deployment, so they are for administrators
   * (GET /admin/health).
   */
  @Get('health/detailed')
  @ApiOperation({
    summary: 'Detailed health check',
    description: "Overall status and each component's status only; administrators get the figures at GET /admin/health.",
  })
  @ApiOkResponse({ description: 'Detailed health status', type: DetailedHealthDto })
  async detailed(): Promise<DetailedHealthDto> {
    const { status, components } = await this.health.detailed();
    return {
      status,
      timestamp: new Date().toISOString(),
      version: this.config.version,
      components: statusesOnly(components),
      metrics: {},
    };
  }

  @Get('ready')
  @ApiOperation({
    summary: 'Readiness check',
    description: '200 when not shutting down, the schema is current and the database answers; 503 otherwise.',
  })
  @ApiOkResponse({ description: 'Service ready', type: ReadinessDto })
  @ApiServiceUnavailableResponse({ description: 'Service not ready', type: ReadinessDto })
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<ReadinessDto> {
    const ready = await this.readiness.isReady();
    reply.status(ready ? 200 : 503);
    return { ready, timestamp: new Date().toISOString() };
  }
}
