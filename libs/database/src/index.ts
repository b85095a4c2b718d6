export { DatabaseModule } from './database.module';
export { buildDataSourceOptions } from './database-options';
export { DatabaseProbe } from './database-probe';
export { MigrationService } from './migration.service';
export { MIGRATIONS } from './migrations';
export { returnedRows } from './returned-rows';
export { UnitOfWork } from './unit-of-work';
export type { Transaction } from './unit-of-work';
export { migratedColumns } from './migrated-columns';
