import { InitialSchema1764000000000 } from './1764000000000-initial-schema';
import { UsersAndSessions1764100000000 } from './1764100000000-users-and-sessions';
import { AuditLog1764200000000 } from './1764200000000-audit-log';
import { Mfa1764300000000 } from './1764300000000-mfa';

/** Every migration, oldest first. Listed explicitly so build, tests and CLI load the same set. */
export const MIGRATIONS = [InitialSchema1764000000000, UsersAndSessions1764100000000, AuditLog1764200000000, Mfa1764300000000];
