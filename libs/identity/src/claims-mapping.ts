import { IdentityProviderConfig, Role, ROLES } from '@app/core';

/** What an identity provider asserts about a person (ID token, userinfo or access token claims). */
export type IdpClaims = Record<string, unknown> & { sub?: unknown };

/** The claim at `path` (`a.b` for nested ones such as Keycloak's `realm_access.roles`); own properties only. */
function claimAt(claims: IdpClaims, path: string): unknown {
  let value: unknown = claims;
  for (const part of path.split('.')) {
    if (!value || typeof value !== 'object' || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** The values of a claim, as strings: a list or one string; anything else counts as no value. */
export function claimValues(claims: IdpClaims, path: string): string[] {
  const value = claimAt(claims, path);
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** Whether the claim is present at all (an empty list counts: the person is in no group). */
export function hasClaim(claims: IdpClaims, path: string): boolean {
  const value = claimAt(claims, path);
  return value !== undefined && value !== null;
}

export interface MappedAccess {
  roles: Role[];
  permissions: string[];
}

/** The account's roles and own permissions as the provider's mapping gives them for these claims. */
export function mappedAccess(provider: IdentityProviderConfig, claims: IdpClaims): MappedAccess {
  const values = claimValues(claims, provider.rolesClaim);
  const roles = new Set<Role>();
  const permissions = new Set<string>();
  for (const value of values) {
    if (Object.hasOwn(provider.roleMap, value)) roles.add(provider.roleMap[value]);
    if (Object.hasOwn(provider.permissionMap, value)) for (const permission of provider.permissionMap[value]) permissions.add(permission);
  }
  if (roles.size === 0) for (const role of provider.defaultRoles) roles.add(role);
  return { roles: ROLES.filter((role) => roles.has(role)), permissions: [...permissions].sort() };
}

/** The email the provider asserts (lower-cased), or undefined. */
export function emailOf(claims: IdpClaims): string | undefined {
  const email = claims.email;
  if (typeof email !== 'string' || !/^[^\s@]+@[^\s@]+$/.test(email.trim())) return undefined;
  return email.trim().toLowerCase();
}

/** True only when the provider asserts the email verified: the boolean true (or the string "true" some IdPs send). */
export function isEmailVerified(claims: IdpClaims, claim = 'email_verified'): boolean {
  const value = claimAt(claims, claim);
  return value === true || value === 'true';
}

export function domainOf(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1);
}

/** The subject as a non-empty string, or undefined. */
export function subjectOf(claims: IdpClaims): string | undefined {
  return typeof claims.sub === 'string' && claims.sub !== '' ? claims.sub : undefined;
}

/** A display name for a new account: `name`, else the email's local part. */
export function displayNameOf(claims: IdpClaims, email: string): string {
  const name = typeof claims.name === 'string' ? claims.name.trim() : '';
  return (name || email.slice(0, email.lastIndexOf('@'))).slice(0, 100);
}
