import type { DataSourceOptions } from 'typeorm';
import type { AppConfig } from '@app/core';
import { MIGRATIONS } from './migrations';
import type { EmbeddedConnection } from './embedded-postgres';
import { TypeOrmLogger } from './typeorm-logger';

/**
 * The one set of TypeORM options, used by the application and by ormconfig.ts (the CLI).
 * Schema changes only ever come from the checked-in migrations.
 */
export function buildDataSourceOptions(
  config: AppConfig,
  embedded?: EmbeddedConnection,
  entities: DataSourceOptions['entities'] = [],
): DataSourceOptions {
  const connection = embedded
    ? { host: embedded.host, port: embedded.port, username: 'postgres', database: 'postgres' }
    : { url: config.database.url };
  return {
    type: 'postgres',
    ...connection,
    ssl: !embedded && config.database.ssl ? { rejectUnauthorized: true } : false,
    entities,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    migrationsRun: false,
    synchronize: false,
    logger: new TypeOrmLogger(),
    logging: ['error', 'warn', 'migration'],
    maxQueryExecutionTime: 1_000,
    extra: {
      max: embedded ? 1 : config.database.poolMax,
      connectionTimeoutMillis: config.database.connectTimeoutMs,
      idleTimeoutMillis: 30_000,
      statement_timeout: config.database.statementTimeoutMs || undefined,
      application_name: 'secure-mcp-server',
    },
  };
}
