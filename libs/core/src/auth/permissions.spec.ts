import {
  ALL_PERMISSIONS,
  apiKeyPermissions,
  holdsAll,
  Permission,
  PERMISSION_PATTERN,
  resolvePermissions,
  ROLE_PERMISSIONS,
} from './permissions';

describe('permissions', () => {
  it('gives users the basic set', () => {
    expect(resolvePermissions(['user'], [])).toEqual([
      'apikeys:manage',
      'contexts:read',
      'contexts:write',
      'sessions:read',
      'sessions:write',
      'tools:execute',
      'tools:read',
    ]);
  });

  it('gives developers the user set plus tools:write and executions:read', () => {
    const developer = resolvePermissions(['developer'], []);
    expect(developer).toEqual(expect.arrayContaining([...ROLE_PERMISSIONS.user, 'tools:write', 'executions:read']));
    expect(developer.some((p) => p.startsWith('admin:'))).toBe(false);
  });

  it('gives admins everything in the catalogue', () => {
    expect(resolvePermissions(['admin'], [])).toEqual([...ALL_PERMISSIONS].sort());
    expect(ALL_PERMISSIONS).toEqual(
      expect.arrayContaining(['admin:users:read', 'admin:users:write', 'admin:audit:read', 'admin:tools:write', 'admin:sessions:write']),
    );
  });

  it("adds the user's own grants to the role defaults, without duplicates", () => {
    const effective = resolvePermissions(['user'], ['tools:write', 'tools:read', 'tool:filesystem:read']);
    expect(effective).toContain('tools:write');
    expect(effective).toContain('tool:filesystem:read');
    expect(effective.filter((p) => p === 'tools:read')).toHaveLength(1);
  });

  it('unions several roles', () => {
    expect(resolvePermissions(['user', 'developer'], [])).toEqual(resolvePermissions(['developer'], []));
  });

  it('has no permissions without roles or grants', () => {
    expect(resolvePermissions([], [])).toEqual([]);
  });

  it('requires every listed permission', () => {
    const held = resolvePermissions(['developer'], []);
    expect(holdsAll(held, [])).toBe(true);
    expect(holdsAll(held, [Permission.TOOLS_WRITE, Permission.TOOLS_EXECUTE])).toBe(true);
    expect(holdsAll(held, [Permission.TOOLS_WRITE, Permission.ADMIN_USERS_READ])).toBe(false);
  });

  it('accepts well-formed permission strings only', () => {
    for (const permission of [...ALL_PERMISSIONS, 'tool:filesystem:read']) expect(PERMISSION_PATTERN.test(permission)).toBe(true);
    for (const bad of ['admin', 'Tools:Read', 'tools:', ':read', 'tools read', 'a:b:c:d:e:f'])
      expect(PERMISSION_PATTERN.test(bad)).toBe(false);
  });

  it('never makes an admin:* grant effective for a non-admin', () => {
    expect(resolvePermissions(['developer'], ['admin:users:read', 'tool:x:run'])).not.toContain('admin:users:read');
    expect(resolvePermissions(['user'], ['admin:contexts:read'])).not.toContain('admin:contexts:read');
    expect(resolvePermissions(['user'], ['tool:x:run'])).toContain('tool:x:run');
    expect(resolvePermissions(['admin'], ['tool:x:run'])).toContain('tool:x:run');
  });

  it("narrows a key to its own list within the owner's current permissions", () => {
    const owner = resolvePermissions(['user'], []);
    expect(apiKeyPermissions(owner, null, false)).toEqual(owner);
    expect(apiKeyPermissions(owner, ['tools:read', 'admin:users:read', 'tools:write'], false)).toEqual(['tools:read']);
  });

  it('keeps an admin-owned bound key away from admin:* and from widening its context', () => {
    const admin = resolvePermissions(['admin'], ['tool:x:run']);
    const bound = apiKeyPermissions(admin, null, true);
    expect(bound.filter((p) => p.startsWith('admin:'))).toEqual([]);
    for (const dropped of ['apikeys:manage', 'contexts:write', 'tools:write', 'sessions:write']) expect(bound).not.toContain(dropped);
    expect(bound).toEqual(expect.arrayContaining(['tools:read', 'tools:execute', 'contexts:read', 'sessions:read', 'tool:x:run']));
    expect(apiKeyPermissions(admin, ['tools:read', 'admin:audit:read'], true)).toEqual(['tools:read']);
  });
});
