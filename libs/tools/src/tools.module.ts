import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { RedisConnection } from '@app/redis';
import { SessionsModule } from '@app/sessions';
import { UsersModule } from '@app/users';
import { BuiltinToolProvider } from './builtin/builtin-tool.provider';
import { ToolCatalogService } from './catalog/tool-catalog.service';
import { ToolProviderRegistry } from './catalog/tool-provider.registry';
import { ToolRepository } from './catalog/tool.repository';
import { ExecutionRecorder } from './execution/execution-recorder';
import { ToolExecutionQueue } from './execution/tool-execution.queue';
import { ToolExecutionRepository } from './execution/tool-execution.repository';
import { ToolExecutionService } from './execution/tool-execution.service';
import { toolDurationHistogram, toolExecutionsCounter } from './execution/tool-metrics';
import { ToolQueueMetrics } from './execution/tool-queue-metrics';
import { ToolRunner } from './execution/tool-runner';
import { ToolSchemaValidator } from './execution/tool-schema-validator';
import { AdminToolsController } from './http/admin-tools.controller';
import { ToolsController } from './http/tools.controller';
import { ToolListCache } from './http/tool-list.cache';
import { InMemoryRateLimitStore } from './rate-limit/in-memory-rate-limit.store';
import { RedisRateLimitStore } from './rate-limit/redis-rate-limit.store';
import { RateLimitStore } from './rate-limit/rate-limit-store';
import { ToolRateLimiter } from './rate-limit/tool-rate-limiter';
import { ToolRuntimeStats } from './runtime/tool-runtime-stats';
import { TOOL_PROVIDERS } from './tool-providers.token';

/**
 * The tool catalogue, the execution pipeline (REST here; the MCP gateway imports this module
 * and calls ToolExecutionService) and the built-in tools. More tool sources join by declaring
 * TOOL_PROVIDERS in their own module.
 */
@Module({
  imports: [DiscoveryModule, UsersModule, SessionsModule],
  controllers: [ToolsController, AdminToolsController],
  providers: [
    ToolRuntimeStats,
    BuiltinToolProvider,
    { provide: TOOL_PROVIDERS, useExisting: BuiltinToolProvider },
    ToolProviderRegistry,
    ToolSchemaValidator,
    ToolRepository,
    ToolCatalogService,
    ToolListCache,
    {
      provide: RateLimitStore,
      inject: [RedisConnection],
      useFactory: (redis: RedisConnection) => (redis.enabled ? new RedisRateLimitStore(redis) : new InMemoryRateLimitStore()),
    },
    ToolRateLimiter,
    ToolRunner,
    ToolExecutionRepository,
    ExecutionRecorder,
    ToolExecutionQueue,
    ToolQueueMetrics,
    ToolExecutionService,
    toolExecutionsCounter,
    toolDurationHistogram,
  ],
  exports: [
    ToolCatalogService,
    ToolExecutionService,
    ToolRuntimeStats,
    ToolProviderRegistry,
    ToolRateLimiter,
    RateLimitStore,
    ExecutionRecorder,
  ],
})
export class ToolsModule {}
