import type { Role } from '@app/core';

/**
 * The permission catalogue. A principal's effective permissions are the union of its roles'
 * defaults (below) and the user's own `permissions` (granted by an admin). Routes state what
 * they need with `@Roles(...)` (any one of the roles) and `@RequirePermissions(...)` (all of
 * them); the global guard checks both on every request against the user's current state.
 *
 * | permission            | what it allows                                        | user | developer | admin |
 * |-----------------------|-------------------------------------------------------|------|-----------|-------|
 * | tools:read            | list and read tools                                   |  ✓   |     ✓     |   ✓   |
 * | tools:execute         | execute tools (REST and MCP)                          |  ✓   |     ✓     |   ✓   |
 * | contexts:read         | read own contexts                                     |  ✓   |     ✓     |   ✓   |
 * | contexts:write        | create, change and delete own contexts                |  ✓   |     ✓     |   ✓   |
 * | sessions:read         | list own sessions                                     |  ✓   |     ✓     |   ✓   |
 * | sessions:write        | terminate own sessions                                |  ✓   |     ✓     |   ✓   |
 * | apikeys:manage        | manage own agent API keys                             |  ✓   |     ✓     |   ✓   |
 * | tools:write           | register and configure tools                          |      |     ✓     |   ✓   |
 * | executions:read       | read tool execution records                           |      |     ✓     |   ✓   |
 * | tools:filesystem:write| write files in the filesystem tool's sandbox           |      |     ✓     |   ✓   |
 * | admin:users:read      | list users                                            |      |           |   ✓   |
 * | admin:users:write     | change roles and permissions, suspend and reactivate  |      |           |   ✓   |
 * | admin:audit:read      | read and verify the audit log                         |      |           |   ✓   |
 * | admin:tools:write     | enable, disable and configure any tool                |      |           |   ✓   |
 * | admin:sessions:write  | terminate any user's sessions                         |      |           |   ✓   |
 * | admin:health:read     | read health figures (paths, upstreams, errors)        |      |           |   ✓   |
 *
 * Admin routes require the `admin` role and the matching `admin:*` permission, so a
 * permission granted to a non-admin alone never opens an admin route.
 */
export const Permission = {
  TOOLS_READ: 'tools:read',
  TOOLS_EXECUTE: 'tools:execute',
  TOOLS_WRITE: 'tools:write',
  EXECUTIONS_READ: 'executions:read',
  TOOLS_FILESYSTEM_WRITE: 'tools:filesystem:write',
  CONTEXTS_READ: 'contexts:read',
  CONTEXTS_WRITE: 'contexts:write',
  SESSIONS_READ: 'sessions:read',
  SESSIONS_WRITE: 'sessions:write',
  APIKEYS_MANAGE: 'apikeys:manage',
  ADMIN_USERS_READ: 'admin:users:read',
  ADMIN_USERS_WRITE: 'admin:users:write',
  ADMIN_AUDIT_READ: 'admin:audit:read',
  ADMIN_TOOLS_WRITE: 'admin:tools:write',
  ADMIN_SESSIONS_WRITE: 'admin:sessions:write',
  ADMIN_HEALTH_READ: 'admin:health:read',
} as const;

export type PermissionName = (typeof Permission)[keyof typeof Permission];

export const ALL_PERMISSIONS: readonly PermissionName[] = Object.values(Permission);

const USER_DEFAULTS: readonly PermissionName[] = [
  Permission.TOOLS_READ,
  Permission.TOOLS_EXECUTE,
  Permission.CONTEXTS_READ,
  Permission.CONTEXTS_WRITE,
  Permission.SESSIONS_READ,
  Permission.SESSIONS_WRITE,
  Permission.APIKEYS_MANAGE,
];

export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly PermissionName[]>> = {
  user: USER_DEFAULTS,
  developer: [...USER_DEFAULTS, Permission.TOOLS_WRITE, Permission.EXECUTIONS_READ, Permission.TOOLS_FILESYSTEM_WRITE],
  admin: ALL_PERMISSIONS,
};

/**
 * Shape of a permission string: lower-case segments joined by colons (`tools:execute`,
 * `tool:filesystem:read`). Grants outside the catalogue are allowed (tools may declare their
 * own permissions) but must have this shape.
 */
export const PERMISSION_PATTERN = /^[a-z][a-z0-9_-]*(:[a-z0-9_-]+){1,4}$/;

/** Effective permissions: the roles' defaults plus the user's own grants, sorted and unique. */
export function resolvePermissions(roles: readonly Role[], own: readonly string[]): string[] {
  const result = new Set<string>(own);
  for (const role of roles) for (const permission of ROLE_PERMISSIONS[role] ?? []) result.add(permission);
  return [...result].sort();
}

/** True when every required permission is among the held ones. */
export function holdsAll(held: readonly string[], required: readonly string[]): boolean {
  // Both lists are a handful of names: a linear scan beats building a Set per request.
  return required.every((permission) => held.includes(permission));
}
