export * from './database.module';
export * from './database-options';
export * from './embedded-postgres';
export * from './migration.service';
export * from './migrations';
export * from './postgres-breaker';
export * from './returned-rows';
export * from './single-connection.guard';
