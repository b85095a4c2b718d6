import { InitialSchema1764000000000 } from './1764000000000-initial-schema';
import { UsersAndSessions1764100000000 } from './1764100000000-users-and-sessions';
import { AuditLog1764200000000 } from './1764200000000-audit-log';
import { Mfa1764300000000 } from './1764300000000-mfa';
import { Tools1764400000000 } from './1764400000000-tools';
import { Contexts1764500000000 } from './1764500000000-contexts';
import { ApiKeys1764600000000 } from './1764600000000-api-keys';
import { UpstreamPins1764700000000 } from './1764700000000-upstream-pins';
import { McpSessions1764800000000 } from './1764800000000-mcp-sessions';
import { AuditKeyedChain1764900000000 } from './1764900000000-audit-keyed-chain';
import { QueueFairness1764910000000 } from './1764910000000-queue-fairness';
import { UpstreamPinScreening1764920000000 } from './1764920000000-upstream-pin-screening';
import { ExecutionCallerPermissions1764930000000 } from './1764930000000-execution-caller-permissions';
import { AuditExportCursors1764940000000 } from './1764940000000-audit-export-cursors';
import { OAuth1764950000000 } from './1764950000000-oauth';
import { IdentityLinks1764965000000 } from './1764965000000-identity-links';
import { UpstreamCredentials1764975000000 } from './1764975000000-upstream-credentials';
import { UpstreamOAuthConnections1764985000000 } from './1764985000000-upstream-oauth-connections';

/** Every migration, oldest first. Listed explicitly so build, tests and CLI load the same set. */
export const MIGRATIONS = [
  InitialSchema1764000000000,
  UsersAndSessions1764100000000,
  AuditLog1764200000000,
  Mfa1764300000000,
  Tools1764400000000,
  Contexts1764500000000,
  ApiKeys1764600000000,
  UpstreamPins1764700000000,
  McpSessions1764800000000,
  AuditKeyedChain1764900000000,
  QueueFairness1764910000000,
  UpstreamPinScreening1764920000000,
  ExecutionCallerPermissions1764930000000,
  AuditExportCursors1764940000000,
  OAuth1764950000000,
  IdentityLinks1764965000000,
  UpstreamCredentials1764975000000,
  UpstreamOAuthConnections1764985000000,
];
