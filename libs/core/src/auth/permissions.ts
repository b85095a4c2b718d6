import type { Role } from './principal';

/**
 * The permission catalogue. A principal's effective permissions are the union of its roles'
 * defaults (below) and the user's own `permissions` (granted by an admin); an API key's are
 * narrowed further (`apiKeyPermissions`). Every route states what it needs: `@Roles(...)` (any
 * one of the roles) and `@RequirePermissions(...)` (all of them), or `@Public()`,
 * `@Authenticated()`, `@InteractiveOnly()`; the global guard checks them on every request
 * against the user's current state.
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
 * | admin:sessions:read   | list any user's sessions                              |      |           |   ✓   |
 * | admin:contexts:read   | see and use any user's contexts                       |      |           |   ✓   |
 * | admin:contexts:write  | change and delete any user's contexts                 |      |           |   ✓   |
 * | admin:executions:read | read any user's tool executions (input and result)    |      |           |   ✓   |
 * | admin:health:read     | read health figures (paths, upstreams, errors)        |      |           |   ✓   |
 *
 * Data scope (whose contexts, sessions and executions a caller sees) is decided by these
 * permissions, never by a role name, so an admin's narrowed API key sees what its list allows.
 * `admin:*` permissions count only for holders of the `admin` role: a grant to a non-admin is
 * stored but not effective, so it never opens an admin route or widens a scope.
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
  ADMIN_SESSIONS_READ: 'admin:sessions:read',
  ADMIN_CONTEXTS_READ: 'admin:contexts:read',
  ADMIN_CONTEXTS_WRITE: 'admin:contexts:write',
  ADMIN_EXECUTIONS_READ: 'admin:executions:read',
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

const ADMIN_PREFIX = 'admin:';

/**
 * Effective permissions: the roles' defaults plus the user's own grants, sorted and unique;
 * `admin:*` grants only for administrators.
 */
export function resolvePermissions(roles: readonly Role[], own: readonly string[]): string[] {
  const admin = roles.includes('admin');
  const result = new Set<string>(admin ? own : own.filter((permission) => !permission.startsWith(ADMIN_PREFIX)));
  for (const role of roles) for (const permission of ROLE_PERMISSIONS[role] ?? []) result.add(permission);
  return [...result].sort();
}

/**
 * What a key bound to one context may still do: use and read things in that context. Catalogue
 * permissions not listed here (every admin:*, apikeys:manage, contexts:write, tools:write) are
 * dropped, so such a key never reaches an admin route nor widens its own context; permissions
 * outside the catalogue are tools' own and stay.
 */
const BOUND_KEY_PERMISSIONS: ReadonlySet<string> = new Set<PermissionName>([
  Permission.TOOLS_READ,
  Permission.TOOLS_EXECUTE,
  Permission.EXECUTIONS_READ,
  Permission.TOOLS_FILESYSTEM_WRITE,
  Permission.CONTEXTS_READ,
  Permission.SESSIONS_READ,
]);
const CATALOGUE: ReadonlySet<string> = new Set(ALL_PERMISSIONS);

/**
 * An API key's effective permissions: the owner's current effective ones, narrowed to the key's
 * own list (null: the owner's all) and, for a key bound to a context, to what a bound key may do.
 */
export function apiKeyPermissions(ownerEffective: readonly string[], keyList: readonly string[] | null, bound: boolean): string[] {
  return ownerEffective.filter(
    (permission) =>
      (keyList === null || keyList.includes(permission)) &&
      (!bound || BOUND_KEY_PERMISSIONS.has(permission) || (!CATALOGUE.has(permission) && !permission.startsWith(ADMIN_PREFIX))),
  );
}

/** True when every required permission is among the held ones. */
export function holdsAll(held: readonly string[], required: readonly string[]): boolean {
  // Both lists are a handful of names: a linear scan beats building a Set per request.
  return required.every((permission) => held.includes(permission));
}
