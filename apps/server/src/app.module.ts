import { DynamicModule, Module, Type } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { Logger as PinoLogger } from 'pino';
import { AdminModule } from '@app/admin';
import { AuditModule } from '@app/audit';
import { AuthModule } from '@app/auth';
import { ContextsModule } from '@app/contexts';
import { AppConfig, CoreModule } from '@app/core';
import { DatabaseModule } from '@app/database';
import { HealthModule } from '@app/health';
import { IdentityModule } from '@app/identity';
import { McpGatewayModule } from '@app/mcp-gateway';
import { OAuthModule } from '@app/oauth';
import { RedisModule } from '@app/redis';
import { TelemetryModule, TracingHandle } from '@app/telemetry';
import { ToolsModule, UpstreamsModule } from '@app/tools';

/** Composition only: which modules make up the server. */
@Module({})
export class AppModule {
  static forRoot(
    config: AppConfig,
    logger: PinoLogger,
    extraModules: Array<Type | DynamicModule> = [],
    tracing: TracingHandle | null = null,
  ): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CoreModule.forRoot(config),
        TelemetryModule.forRoot(tracing),
        // Nest's logs go to the same pino logger as Fastify's. No per-request binding middleware:
        // the AsyncLocalStorage it needs taxes every promise, and the Nest middleware layer with
        // it cost a large share of a cached read's throughput. The request line and error lines
        // carry the request id themselves.
        LoggerModule.forRoot({ pinoHttp: { logger }, useExisting: true, forRoutes: [] }),
        DatabaseModule.forRoot(),
        HealthModule,
        RedisModule,
        AuditModule,
        AuthModule,
        AdminModule,
        IdentityModule,
        ToolsModule,
        UpstreamsModule,
        ContextsModule,
        OAuthModule,
        McpGatewayModule,
        ...extraModules,
      ],
    };
  }
}
