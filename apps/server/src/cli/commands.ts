import { auditVerifyCommand } from './audit-verify.command';
import type { CliCommand } from './cli-command';
import { createAdminCommand } from './create-admin.command';
import { migrateCommand } from './migrate.command';

/** Every CLI command, by name. */
export const COMMANDS: readonly CliCommand[] = [migrateCommand, createAdminCommand, auditVerifyCommand];
