import { Permission } from '@app/core';

/**
 * The scopes our authorization server grants, and what each allows. A token's permissions are
 * the user's own, narrowed to the union of its scopes' (an admin's token is no admin token).
 *
 * | scope            | allows                                                              |
 * |------------------|---------------------------------------------------------------------|
 * | `mcp:tools`      | use the MCP endpoint the token is for: list and call tools, prompts, |
 * |                  | resources (tools:read, tools:execute, tools:filesystem:write,        |
 * |                  | contexts:read)                                                       |
 * | `offline_access` | a refresh token (issued to clients allowed the refresh_token grant)  |
 */
export const MCP_SCOPE = 'mcp:tools';
export const OFFLINE_ACCESS = 'offline_access';

export const SCOPE_PERMISSIONS: Readonly<Record<string, readonly string[]>> = {
  [MCP_SCOPE]: [Permission.TOOLS_READ, Permission.TOOLS_EXECUTE, Permission.TOOLS_FILESYSTEM_WRITE, Permission.CONTEXTS_READ],
  [OFFLINE_ACCESS]: [],
};

/** What the consent page says of each scope. */
export const SCOPE_DESCRIPTIONS: Readonly<Record<string, string>> = {
  [MCP_SCOPE]: 'List and call the tools, prompts and resources you may use on this MCP endpoint, as you',
  [OFFLINE_ACCESS]: 'Stay signed in: keep access until you revoke it, without asking you again',
};

/** Scopes an MCP endpoint (a resource server) grants in its access tokens. */
export const RESOURCE_SCOPES: readonly string[] = [MCP_SCOPE];

/** The permissions a token with these scopes may use at most. */
export function permissionsOfScopes(scopes: readonly string[]): string[] {
  const permissions = new Set<string>();
  for (const scope of scopes) for (const permission of SCOPE_PERMISSIONS[scope] ?? []) permissions.add(permission);
  return [...permissions];
}
