import { MigrationService } from '@app/database';
import { CliCommand, ExitCode, parseOptions } from './cli-command';

/** `migrate`: applies pending migrations (for deployments that run the server with RUN_MIGRATIONS=false). */
export const migrateCommand: CliCommand = {
  name: 'migrate',
  usage: 'migrate',
  summary: 'Apply pending database migrations',
  // Applied while booting, before any module that reads the schema starts; run() confirms.
  configure: (config) => ({ ...config, database: { ...config.database, runMigrations: true } }),
  async run({ app, args, stdout }) {
    parseOptions(args, []);
    const migrations = app.get(MigrationService, { strict: false });
    await migrations.runPending();
    stdout.write('Database schema is up to date\n');
    return ExitCode.OK;
  },
};
