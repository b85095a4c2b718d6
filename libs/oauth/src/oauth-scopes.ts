import { Permission } from '@app/core';

/**
 * The scopes our authorization server grants, and what each allows. A token's permissions are
 * the user's own, narrowed to the union of its scopes' (an admin's token is no admin token, and a
 * scope never adds a permission the user lacks).
 *
 * | scope            | allows                                                                   |
 * |------------------|--------------------------------------------------------------------------|
 * | `mcp:tools`      | use the MCP endpoint the token is for: list and call tools, get prompts,  |
 * |                  | read resources (tools:read, tools:execute, tools:filesystem:write,        |
 * |                  | contexts:read); the default when a request names no scope                 |
 * | `mcp:read`       | look, never act: discover, list tools, prompts and resources, get prompts, |
 * |                  | read and subscribe to resources, complete arguments (the methods in       |
 * |                  | MCP_READ_METHODS; any other, a tool call first, needs `mcp:tools`: 403    |
 * |                  | insufficient_scope, the client steps up). Its permissions are tools:read, |
 * |                  | tools:execute and contexts:read, because the gateway lists (and reads     |
 * |                  | upstream prompts and resources of) only what the caller may run; it never |
 * |                  | carries tools:filesystem:write. A WebSocket needs `mcp:tools`.            |
 * | `offline_access` | a refresh token (issued to clients allowed the refresh_token grant)      |
 */
export const MCP_SCOPE = 'mcp:tools';
export const MCP_READ_SCOPE = 'mcp:read';
export const OFFLINE_ACCESS = 'offline_access';

export const SCOPE_PERMISSIONS: Readonly<Record<string, readonly string[]>> = {
  [MCP_SCOPE]: [Permission.TOOLS_READ, Permission.TOOLS_EXECUTE, Permission.TOOLS_FILESYSTEM_WRITE, Permission.CONTEXTS_READ],
  [MCP_READ_SCOPE]: [Permission.TOOLS_READ, Permission.TOOLS_EXECUTE, Permission.CONTEXTS_READ],
  [OFFLINE_ACCESS]: [],
};

/** What the consent page says of each scope. */
export const SCOPE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  [MCP_SCOPE]: 'List and call the tools, prompts and resources you may use on this MCP endpoint, as you',
  [MCP_READ_SCOPE]: 'See the tools, prompts and resources you may use on this MCP endpoint, and read them, without calling a tool',
  [OFFLINE_ACCESS]: 'Stay signed in: keep access until you revoke it, without asking you again',
};

/** Scopes an MCP endpoint (a resource server) grants in its access tokens. */
export const RESOURCE_SCOPES: readonly string[] = [MCP_SCOPE, MCP_READ_SCOPE];

/** The JSON-RPC methods an `mcp:read` token may send (and every notification): looking, never acting. */
export const MCP_READ_METHODS: ReadonlySet<string> = new Set([
  'initialize',
  'ping',
  'server/discover',
  'tools/list',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'completion/complete',
  'logging/setLevel',
]);

/**
 * The scope an MCP request needs beyond any MCP scope: none for the methods of MCP_READ_METHODS and
 * notifications (`mcp:read` or `mcp:tools` both do), `mcp:tools` for every other (deny by default:
 * a tool call, a task, a method this list does not know).
 */
export function scopeRequiredFor(method: string): string | undefined {
  return MCP_READ_METHODS.has(method) || method.startsWith('notifications/') ? undefined : MCP_SCOPE;
}

/** The permissions a token with these scopes may use at most. */
export function permissionsOfScopes(scopes: readonly string[]): string[] {
  const permissions = new Set<string>();
  for (const scope of scopes) for (const permission of SCOPE_PERMISSIONS[scope] ?? []) permissions.add(permission);
  return [...permissions];
}
