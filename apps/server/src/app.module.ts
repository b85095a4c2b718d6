import { DynamicModule, Module, RequestMethod, Type } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { Logger as PinoLogger } from 'pino';
import { AdminModule } from '@app/admin';
import { AuditModule } from '@app/audit';
import { AuthModule } from '@app/auth';
import { ContextsModule } from '@app/contexts';
import { AppConfig, CoreModule } from '@app/core';
import { DatabaseModule } from '@app/database';
import { HealthModule } from '@app/health';
import { McpGatewayModule } from '@app/mcp-gateway';
import { ToolsModule, UpstreamsModule } from '@app/tools';

/** Composition only: which modules make up the server. */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig, logger: PinoLogger, extraModules: Array<Type | DynamicModule> = []): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CoreModule.forRoot(config),
        // Fastify already owns the request logger (with the request id); Nest's logs reuse it.
        LoggerModule.forRoot({
          pinoHttp: { logger },
          useExisting: true,
          forRoutes: [{ path: '{*path}', method: RequestMethod.ALL }],
        }),
        DatabaseModule.forRoot(),
        HealthModule,
        AuditModule,
        AuthModule,
        AdminModule,
        ToolsModule,
        UpstreamsModule,
        ContextsModule,
        McpGatewayModule,
        ...extraModules,
      ],
    };
  }
}
