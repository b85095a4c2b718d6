import { DynamicModule, Global, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '@app/core';
import { buildDataSourceOptions } from './database-options';
import { EmbeddedPostgres } from './embedded-postgres';
import { MigrationService } from './migration.service';

@Module({ providers: [EmbeddedPostgres], exports: [EmbeddedPostgres] })
class EmbeddedPostgresModule {}

/** Closes the pool before the embedded database under it, whatever order Nest runs hooks in. */
@Injectable()
class DatabaseLifecycle implements OnApplicationShutdown {
  constructor(
    private readonly dataSource: DataSource,
    private readonly embedded: EmbeddedPostgres,
  ) {}

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
          inject: [APP_CONFIG, EmbeddedPostgres],
          useFactory: async (config: AppConfig, embedded: EmbeddedPostgres) => ({
            ...buildDataSourceOptions(config, config.database.url ? undefined : await embedded.start(config.dataDir)),
            autoLoadEntities: true,
            retryAttempts: 0,
          }),
        }),
      ],
      providers: [MigrationService, DatabaseLifecycle],
      exports: [MigrationService],
    };
  }
}

