import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '@app/core';

/** Arbitrary constant: the advisory lock that serialises migrations across replicas. */
const MIGRATION_LOCK_ID = 727_001;

/**
 * Applies pending migrations at start (unless RUN_MIGRATIONS=false, when a deployment job
 * runs them) and tells readiness whether the schema is current.
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
    const embedded = !this.config.database.url;
    const lockRunner = embedded ? undefined : this.dataSource.createQueryRunner();
    try {
      if (lockRunner) await lockRunner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
      const applied = await this.dataSource.runMigrations({ transaction: 'each' });
      if (applied.length > 0) this.logger.log(`Applied ${applied.length} migration(s): ${applied.map((m) => m.name).join(', ')}`);
      this.current = true;
    } finally {
      if (lockRunner) {
        await lockRunner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
        await lockRunner.release();
      }
    }
  }

  /** True once every migration has been applied; checks again until then. */
  async isCurrent(): Promise<boolean> {
    if (!this.current) this.current = !(await this.dataSource.showMigrations());
    return this.current;
  }
}
