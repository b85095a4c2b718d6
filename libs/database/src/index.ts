export { DatabaseModule } from './database.module';
export { buildDataSourceOptions } from './database-options';
export { MigrationService } from './migration.service';
export { returnedRows } from './returned-rows';
