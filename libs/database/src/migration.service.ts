import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '@app/core';
import { buildDataSourceOptions } from './database-options';

/** Arbitrary constant: the advisory lock that serialises migrations across replicas. */
const MIGRATION_LOCK_ID = 727_001;

/**
 * Applies pending migrations at start (unless RUN_MIGRATIONS=false, when a deployment job
 * runs them) and tells readiness whether the schema is current.
 *
 * With DATABASE_MIGRATION_URL they run as that role (the tables' owner) on a connection of their
 * own, so the server itself can run as a role that cannot alter tables or switch triggers off;
 * with DATABASE_APP_ROLE the owner then grants that role what the server needs, and on
 * audit_logs only SELECT and INSERT.
 */
@Injectable()
export class MigrationService implements OnModuleInit {
  private readonly logger = new Logger(MigrationService.name);
  private current = false;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    if (this.config.database.runMigrations) {
      await this.runPending();
    } else {
      await this.isCurrent().catch(() => false);
    }
  }

  /** Applies pending migrations, one transaction each, holding a cluster-wide lock on PostgreSQL. */
  async runPending(): Promise<void> {
    const { migrationUrl } = this.config.database;
    // Two connections: one holds the lock while the other migrates.
    const owner = migrationUrl
      ? new DataSource(buildDataSourceOptions({ ...this.config, database: { ...this.config.database, url: migrationUrl, poolMax: 2 } }))
      : this.dataSource;
    if (migrationUrl) await owner.initialize();
    const embedded = !this.config.database.url;
    const lockRunner = embedded ? undefined : owner.createQueryRunner();
    try {
      if (lockRunner) await lockRunner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
      const applied = await owner.runMigrations({ transaction: 'each' });
      if (applied.length > 0) this.logger.log(`Applied ${applied.length} migration(s): ${applied.map((m) => m.name).join(', ')}`);
      if (this.config.database.appRole) await grantAppRole(owner, this.config.database.appRole);
      this.current = true;
    } finally {
      if (lockRunner) {
        await lockRunner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
        await lockRunner.release();
      }
      if (migrationUrl) await owner.destroy();
    }
  }

  /** True once every migration has been applied; checks again until then. */
  async isCurrent(): Promise<boolean> {
    if (!this.current) this.current = !(await this.dataSource.showMigrations());
    return this.current;
  }
}

/**
 * The server's role gets rows, never the schema: data rights on every table of the schema
 * (again after each migration run, so new tables are covered), read-only on the migrations
 * table, and on audit_logs SELECT and INSERT alone. Not owning the table, it cannot ALTER it,
 * disable its triggers, UPDATE, DELETE or TRUNCATE it.
 */
async function grantAppRole(owner: DataSource, role: string): Promise<void> {
  await owner.transaction(async (manager) => {
    const [found]: Array<{ owns: boolean }> = await manager.query(
      `SELECT rolname = current_user AS owns FROM pg_roles WHERE rolname = $1`,
      [role],
    );
    if (!found) throw new Error(`DATABASE_APP_ROLE ${role} does not exist: create it (CREATE ROLE ${role} LOGIN ...) before migrating`);
    if (found.owns) throw new Error(`DATABASE_APP_ROLE ${role} is the migration role itself: run migrations as the owner instead`);
    const grantee = `"${role}"`;
    await manager.query(`GRANT USAGE ON SCHEMA public TO ${grantee}`);
    await manager.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${grantee}`);
    await manager.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${grantee}`);
    await manager.query(`REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON migrations FROM ${grantee}`);
    await manager.query(`REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_logs FROM ${grantee}`);
  });
}
