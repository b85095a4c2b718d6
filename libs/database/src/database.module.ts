import { DynamicModule, Global, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '@app/core';
import { buildDataSourceOptions } from './database-options';
import { DatabaseProbe } from './database-probe';
import { EmbeddedPostgres } from './embedded-postgres';
import { MigrationService } from './migration.service';
import { PostgresBreaker } from './postgres-breaker';
import { PostgresHeartbeat } from './postgres-heartbeat.service';
import { UnitOfWork } from './unit-of-work';
import { enforceSingleConnection } from './single-connection.guard';

/** What the TypeORM factory needs besides the config: the embedded server and the outage breaker. */
@Module({
  providers: [EmbeddedPostgres, { provide: PostgresBreaker, useFactory: () => new PostgresBreaker() }],
  exports: [EmbeddedPostgres, PostgresBreaker],
})
class EmbeddedPostgresModule {}

/** Closes the pool before the embedded database under it, whatever order Nest runs hooks in. */
@Injectable()
class DatabaseLifecycle implements OnApplicationShutdown {
  constructor(
    private readonly dataSource: DataSource,
    private readonly embedded: EmbeddedPostgres,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    // The embedded database's one connection: a nested transaction fails loudly instead of hanging.
    if (!config.database.url && config.env !== 'production') enforceSingleConnection(dataSource);
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
    await this.embedded.stop();
  }
}

@Global()
@Module({})
export class DatabaseModule {
  static forRoot(): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        EmbeddedPostgresModule,
        TypeOrmModule.forRootAsync({
          imports: [EmbeddedPostgresModule],
          inject: [APP_CONFIG, EmbeddedPostgres, PostgresBreaker],
          useFactory: async (config: AppConfig, embedded: EmbeddedPostgres, breaker: PostgresBreaker) => ({
            ...buildDataSourceOptions(config, config.database.url ? undefined : await embedded.start(config.dataDir), [], breaker),
            autoLoadEntities: true,
            retryAttempts: 0,
          }),
        }),
      ],
      providers: [MigrationService, DatabaseLifecycle, PostgresHeartbeat, UnitOfWork, DatabaseProbe],
      exports: [MigrationService, UnitOfWork, DatabaseProbe],
    };
  }
}
