import { auditCheckpointCommand, auditPublicKeyCommand } from './audit-checkpoint.command';
import { auditVerifyCheckpointCommand } from './audit-verify-checkpoint.command';
import { auditVerifyCommand } from './audit-verify.command';
import type { CliCommand, StandaloneCliCommand } from './cli-command';
import { createAdminCommand } from './create-admin.command';
import { migrateCommand } from './migrate.command';

/** Every CLI command, by name. */
export const COMMANDS: readonly (CliCommand | StandaloneCliCommand)[] = [
  migrateCommand,
  createAdminCommand,
  auditVerifyCommand,
  auditCheckpointCommand,
  auditPublicKeyCommand,
  auditVerifyCheckpointCommand,
];
