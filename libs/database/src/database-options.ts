import type { DataSourceOptions } from 'typeorm';
import type { AppConfig } from '@app/core';
import { tracing } from '@app/telemetry';
import { MIGRATIONS } from './migrations';
import type { EmbeddedConnection } from './embedded-postgres';
import { TypeOrmLogger } from './typeorm-logger';
import { clientWithQueryDeadline } from './query-deadline.client';
import type { PostgresBreaker } from './postgres-breaker';

/** How much longer than statement_timeout a query may go unanswered before its connection is dropped. */
export const QUERY_DEADLINE_MARGIN_MS = 1_000;

/**
 * The one set of TypeORM options, used by the application and by ormconfig.ts (the CLI).
 * Schema changes only ever come from the checked-in migrations.
 */
export function buildDataSourceOptions(
  config: AppConfig,
  embedded?: EmbeddedConnection,
  entities: DataSourceOptions['entities'] = [],
  /** The application's outage breaker (networked PostgreSQL); the migration CLI runs without one. */
  breaker?: PostgresBreaker,
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
      // A networked server can go silent (statement_timeout never fires then); the embedded one cannot.
      // (The embedded one gets the client too while tracing runs: it is where statements get their spans.)
      ...(embedded
        ? tracing.tracer
          ? { Client: clientWithQueryDeadline(undefined) }
          : {}
        : {
            Client: clientWithQueryDeadline(
              config.database.statementTimeoutMs > 0 ? config.database.statementTimeoutMs + QUERY_DEADLINE_MARGIN_MS : undefined,
              breaker,
            ),
          }),
    },
  };
}
