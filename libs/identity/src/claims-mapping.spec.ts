import type { IdentityProviderConfig } from '@app/core';
import { claimValues, emailOf, isEmailVerified, mappedAccess } from './claims-mapping';

const provider = (overrides: Partial<IdentityProviderConfig> = {}): IdentityProviderConfig => ({
  name: 'corp',
  displayName: 'Corp',
  issuer: 'https://idp.example.com',
  clientId: 'gw',
  clientSecret: undefined,
  scopes: ['openid'],
  audiences: [],
  algorithms: ['RS256'],
  rolesClaim: 'groups',
  emailVerifiedClaim: 'email_verified',
  roleMap: { admins: 'admin', devs: 'developer' },
  permissionMap: { auditors: ['admin:audit:read'], writers: ['tools:write'] },
  defaultRoles: ['user'],
  emailDomains: [],
  trustedDomains: [],
  requireForDomains: [],
  jit: true,
  redirectUri: undefined,
  allowHttp: false,
  ...overrides,
});

describe('claims mapping', () => {
  it('reads a claim as a list, a string, or a nested path; anything else is no value', () => {
    expect(claimValues({ groups: ['a', 'b', 3] }, 'groups')).toEqual(['a', 'b']);
    expect(claimValues({ groups: 'a' }, 'groups')).toEqual(['a']);
    expect(claimValues({ realm_access: { roles: ['r'] } }, 'realm_access.roles')).toEqual(['r']);
    expect(claimValues({ groups: { a: 1 } }, 'groups')).toEqual([]);
    // Inherited properties are not claims.
    expect(claimValues({}, 'constructor')).toEqual([]);
  });

  it('maps groups to roles (catalogue order) and permissions, with the default roles when none maps', () => {
    expect(mappedAccess(provider(), { groups: ['devs', 'admins', 'writers', 'other'] })).toEqual({
      roles: ['admin', 'developer'],
      permissions: ['tools:write'],
    });
    expect(mappedAccess(provider(), { groups: ['auditors'] })).toEqual({ roles: ['user'], permissions: ['admin:audit:read'] });
    expect(mappedAccess(provider(), {})).toEqual({ roles: ['user'], permissions: [] });
    expect(mappedAccess(provider({ rolesClaim: 'roles' }), { roles: ['toString', 'admins'] })).toEqual({
      roles: ['admin'],
      permissions: [],
    });
  });

  it('takes email_verified only as true (or the string "true"), and emails lower-cased', () => {
    expect([true, 'true', 'TRUE', 1, 'yes', undefined].map((value) => isEmailVerified({ email_verified: value }))).toEqual([
      true,
      true,
      false,
      false,
      false,
      false,
    ]);
    // Entra ID asserts a verified domain owner with its own claim.
    expect([isEmailVerified({ xms_edov: true }, 'xms_edov'), isEmailVerified({ email_verified: true }, 'xms_edov')]).toEqual([true, false]);
    expect(emailOf({ email: ' Alice@Corp.Example ' })).toBe('alice@corp.example');
    expect(emailOf({ email: 'not an email' })).toBeUndefined();
  });
});
