import { readFileSync } from 'node:fs';
import { ROLES, type Role } from '../auth/principal';
import { PERMISSION_PATTERN } from '../auth/permissions';

/** The signature algorithms an IdP's tokens may use: asymmetric only (never `none`, never HS*: no key confusion). */
export const IDP_ALGORITHMS = ['RS256', 'ES256', 'PS256', 'EdDSA'] as const;
export type IdpAlgorithm = (typeof IDP_ALGORITHMS)[number];

/** One enterprise OpenID Connect identity provider (Entra ID, Okta, Keycloak, Google, …). */
export interface IdentityProviderConfig {
  /** Lower-case name used in URLs (`/auth/oidc/{name}`) and audit records. */
  name: string;
  displayName: string;
  /** The issuer exactly as the IdP's discovery document and tokens state it. */
  issuer: string;
  /** The gateway's client at the IdP (needed for sign-in through the IdP). */
  clientId: string | undefined;
  /** Its secret, from the environment or a mounted file; never logged. Unset: a public client (PKCE only). */
  clientSecret: string | undefined;
  scopes: string[];
  /** Audiences the IdP's access tokens must name to be accepted directly as bearer tokens; empty: not accepted. */
  audiences: string[];
  algorithms: IdpAlgorithm[];
  /** The claim holding groups or roles (a list or one string), mapped by roleMap and permissionMap. */
  rolesClaim: string;
  /** The boolean claim that asserts the email verified (`email_verified`; Entra ID: `xms_edov`). */
  emailVerifiedClaim: string;
  roleMap: Record<string, Role>;
  permissionMap: Record<string, string[]>;
  /** Roles given when no claim value maps to one. */
  defaultRoles: Role[];
  /** Email domains this provider may sign in (empty: any). */
  emailDomains: string[];
  /** Domains for which this provider's verified email may be linked to an existing local account. */
  trustedDomains: string[];
  /** Domains whose accounts must sign in through this provider (local password login and registration refused). */
  requireForDomains: string[];
  /** Create accounts on first sign-in (just in time). */
  jit: boolean;
  /** The callback URL registered at the IdP; unset: derived from the request (its host must be an allowed host). */
  redirectUri: string | undefined;
  /** Tests only: an http:// issuer (a loopback IdP). Refused in production. */
  allowHttp: boolean;
}

export interface IdentityConfig {
  providers: IdentityProviderConfig[];
  /** Email domain → the provider its accounts must sign in with. */
  requiredDomains: Record<string, string>;
  /** Least time between two JWKS refetches of one IdP caused by an unknown key id (rotation). */
  jwksCooldownMs: number;
}

type Env = Record<string, string | undefined>;
type Raw = Record<string, unknown>;

const NAME = /^[a-z][a-z0-9-]{0,31}$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$/;
const DEFAULT_SCOPES = ['openid', 'email', 'profile'];

/**
 * Identity providers from IDP_PROVIDERS (names; each configured by IDP_<NAME>_* variables) and/or
 * IDP_PROVIDERS_FILE (JSON: `{"providers": [{...}]}`, the same settings in camelCase, the secret by
 * `clientSecretEnv` or `clientSecretFile`, never inline). Problems are added to `problems`.
 */
export function parseIdentityConfig(env: Env, isProduction: boolean, problems: string[]): IdentityConfig {
  const raws: Raw[] = [];
  const value = (name: string) => (env[name] === undefined || env[name]!.trim() === '' ? undefined : env[name]!.trim());
  for (const name of (value('IDP_PROVIDERS') ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)) {
    raws.push(fromEnv(name, env, value, problems));
  }
  const file = value('IDP_PROVIDERS_FILE');
  if (file !== undefined) {
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as { providers?: unknown };
      if (!Array.isArray(parsed.providers)) throw new Error('no providers list');
      for (const entry of parsed.providers) {
        if (!entry || typeof entry !== 'object') throw new Error('a provider is not an object');
        raws.push(fromFileEntry(entry as Raw, env, value, problems));
      }
    } catch (error) {
      problems.push(`IDP_PROVIDERS_FILE must name a readable JSON file {"providers": [...]} (${(error as Error).message.split('\n')[0]})`);
    }
  }
  const providers = raws.map((raw) => validate(raw, isProduction, problems));
  const names = providers.map((p) => p.name);
  for (const duplicate of names.filter((n, i) => names.indexOf(n) !== i))
    problems.push(`Identity provider "${duplicate}" is configured twice`);
  const issuers = providers.map((p) => p.issuer);
  for (const duplicate of issuers.filter((n, i) => issuers.indexOf(n) !== i))
    problems.push(`Two identity providers share the issuer ${duplicate}`);
  const requiredDomains: Record<string, string> = {};
  for (const provider of providers) {
    for (const domain of provider.requireForDomains) {
      if (requiredDomains[domain]) problems.push(`Email domain ${domain} is required by two identity providers`);
      requiredDomains[domain] = provider.name;
    }
  }
  const cooldown = value('IDP_JWKS_COOLDOWN_MS');
  let jwksCooldownMs = 30_000;
  if (cooldown !== undefined) {
    if (/^\d+$/.test(cooldown) && Number(cooldown) <= 3_600_000) jwksCooldownMs = Number(cooldown);
    else problems.push(`IDP_JWKS_COOLDOWN_MS must be an integer from 0 to 3600000 (got "${cooldown}")`);
  }
  return { providers, requiredDomains, jwksCooldownMs };
}

/** IDP_<NAME>_* of one provider, as the file's camelCase keys. */
function fromEnv(name: string, env: Env, value: (name: string) => string | undefined, problems: string[]): Raw {
  const prefix = `IDP_${name.toUpperCase().replace(/-/g, '_')}_`;
  const get = (key: string) => value(prefix + key);
  const json = (key: string): unknown => {
    const text = get(key);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text);
    } catch {
      problems.push(`${prefix}${key} must be a JSON object`);
      return undefined;
    }
  };
  return {
    name,
    displayName: get('DISPLAY_NAME'),
    issuer: get('ISSUER'),
    clientId: get('CLIENT_ID'),
    clientSecret: secretOf(`${prefix}CLIENT_SECRET`, get('CLIENT_SECRET'), get('CLIENT_SECRET_FILE'), problems),
    scopes: get('SCOPES'),
    audiences: get('AUDIENCES'),
    algorithms: get('ALGORITHMS'),
    rolesClaim: get('ROLES_CLAIM'),
    emailVerifiedClaim: get('EMAIL_VERIFIED_CLAIM'),
    roleMap: json('ROLE_MAP'),
    permissionMap: json('PERMISSION_MAP'),
    defaultRoles: get('DEFAULT_ROLES'),
    emailDomains: get('EMAIL_DOMAINS'),
    trustedDomains: get('TRUSTED_DOMAINS'),
    requireForDomains: get('REQUIRE_FOR_DOMAINS'),
    jit: get('JIT'),
    redirectUri: get('REDIRECT_URI'),
    allowHttp: get('ALLOW_HTTP'),
    where: `${prefix}*: `,
  };
}

function fromFileEntry(entry: Raw, env: Env, value: (name: string) => string | undefined, problems: string[]): Raw {
  const label = `IDP_PROVIDERS_FILE provider "${String(entry.name)}"`;
  if ('clientSecret' in entry)
    problems.push(`${label}: clientSecret must not be written in the file; use clientSecretEnv or clientSecretFile`);
  const fromVariable = typeof entry.clientSecretEnv === 'string' ? value(entry.clientSecretEnv) : undefined;
  if (typeof entry.clientSecretEnv === 'string' && fromVariable === undefined) {
    problems.push(`${label}: the variable named by clientSecretEnv is not set`);
  }
  const file = typeof entry.clientSecretFile === 'string' ? entry.clientSecretFile : undefined;
  return { ...entry, clientSecret: secretOf(label, fromVariable, file, problems), where: `${label}: ` };
}

function secretOf(label: string, direct: string | undefined, file: string | undefined, problems: string[]): string | undefined {
  if (direct !== undefined && file !== undefined) {
    problems.push(`${label}: set the client secret or its file, not both`);
    return undefined;
  }
  if (file === undefined) return direct;
  try {
    const secret = readFileSync(file, 'utf8').trim();
    if (secret === '') throw new Error('empty');
    return secret;
  } catch {
    // Never the value: only where it should have come from.
    problems.push(`${label}: the client secret file must be a readable, non-empty file`);
    return undefined;
  }
}

function validate(raw: Raw, isProduction: boolean, problems: string[]): IdentityProviderConfig {
  const where = String(raw.where ?? '');
  const problem = (text: string) => problems.push(`${where}${text}`);
  const name = String(raw.name ?? '').toLowerCase();
  if (!NAME.test(name)) problem(`the provider name must be lower-case letters, digits and - (1 to 32, got "${name}")`);
  const list = (key: string): string[] => {
    const v = raw[key];
    if (v === undefined) return [];
    if (typeof v === 'string')
      return v
        .split(/[,\s]+/)
        .map((s) => s.trim())
        .filter(Boolean);
    if (Array.isArray(v) && v.every((item) => typeof item === 'string')) return v.map((s) => s.trim()).filter(Boolean);
    problem(`${key} must be a list of strings`);
    return [];
  };
  const domains = (key: string): string[] => {
    const values = list(key).map((d) => d.toLowerCase());
    for (const domain of values) if (!DOMAIN.test(domain)) problem(`${key} entries must be domain names (got "${domain}")`);
    return values;
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = raw[key];
    if (v === undefined) return fallback;
    if (typeof v === 'boolean') return v;
    if (/^(true|1|yes|on)$/i.test(String(v))) return true;
    if (/^(false|0|no|off)$/i.test(String(v))) return false;
    problem(`${key} must be true or false`);
    return fallback;
  };

  const allowHttp = bool('allowHttp', false);
  if (allowHttp && isProduction) problem('allowHttp (an http:// issuer) is for tests only and must not be set when NODE_ENV=production');
  const issuer = typeof raw.issuer === 'string' ? raw.issuer : '';
  try {
    const url = new URL(issuer);
    if (url.protocol !== 'https:' && !(allowHttp && url.protocol === 'http:')) throw new Error('scheme');
    if (url.username || url.password || url.search || url.hash) throw new Error('parts');
  } catch {
    problem(`the issuer must be an https:// URL without credentials, query or fragment (got "${issuer}")`);
  }
  const algorithms = list('algorithms');
  for (const alg of algorithms) {
    if (!(IDP_ALGORITHMS as readonly string[]).includes(alg))
      problem(`algorithms may only name ${IDP_ALGORITHMS.join(', ')} (got "${alg}")`);
  }
  const roleMap: Record<string, Role> = {};
  const rawRoles = raw.roleMap;
  if (rawRoles !== undefined && (typeof rawRoles !== 'object' || rawRoles === null || Array.isArray(rawRoles)))
    problem('roleMap must be an object');
  else
    for (const [claimValue, role] of Object.entries((rawRoles ?? {}) as Raw)) {
      if (!(ROLES as readonly unknown[]).includes(role))
        problem(`roleMap values must be one of ${ROLES.join(', ')} (got "${String(role)}")`);
      else roleMap[claimValue] = role as Role;
    }
  const permissionMap: Record<string, string[]> = {};
  const rawPermissions = raw.permissionMap;
  if (rawPermissions !== undefined && (typeof rawPermissions !== 'object' || rawPermissions === null || Array.isArray(rawPermissions))) {
    problem('permissionMap must be an object');
  } else
    for (const [claimValue, permissions] of Object.entries((rawPermissions ?? {}) as Raw)) {
      if (!Array.isArray(permissions) || !permissions.every((p) => typeof p === 'string' && PERMISSION_PATTERN.test(p))) {
        problem(`permissionMap values must be lists of permissions like tools:write (at "${claimValue}")`);
      } else permissionMap[claimValue] = permissions as string[];
    }
  const defaultRoles = list('defaultRoles');
  for (const role of defaultRoles)
    if (!(ROLES as readonly string[]).includes(role)) problem(`defaultRoles must be among ${ROLES.join(', ')}`);
  const redirectUri = typeof raw.redirectUri === 'string' ? raw.redirectUri : undefined;
  if (redirectUri !== undefined && !/^https?:\/\/[^\s#]+$/.test(redirectUri)) problem('redirectUri must be an http(s) URL');
  if (redirectUri?.startsWith('http:') && isProduction) problem('redirectUri must be https:// when NODE_ENV=production');
  const clientId = typeof raw.clientId === 'string' && raw.clientId !== '' ? raw.clientId : undefined;
  const audiences = list('audiences');
  if (clientId === undefined && audiences.length === 0)
    problem('set clientId (sign-in through the IdP), audiences (its access tokens accepted), or both');
  const requireForDomains = domains('requireForDomains');
  if (requireForDomains.length > 0 && clientId === undefined)
    problem('requireForDomains needs clientId: those accounts must be able to sign in');
  const rolesClaim = typeof raw.rolesClaim === 'string' && raw.rolesClaim !== '' ? raw.rolesClaim : 'groups';
  const emailVerifiedClaim =
    typeof raw.emailVerifiedClaim === 'string' && raw.emailVerifiedClaim !== '' ? raw.emailVerifiedClaim : 'email_verified';
  return {
    name,
    displayName: typeof raw.displayName === 'string' && raw.displayName !== '' ? raw.displayName : name,
    issuer,
    clientId,
    clientSecret: typeof raw.clientSecret === 'string' ? raw.clientSecret : undefined,
    scopes: list('scopes').length > 0 ? list('scopes') : DEFAULT_SCOPES,
    audiences,
    algorithms: (algorithms.length > 0 ? algorithms : [...IDP_ALGORITHMS]) as IdpAlgorithm[],
    rolesClaim,
    emailVerifiedClaim,
    roleMap,
    permissionMap,
    defaultRoles: (defaultRoles.length > 0 ? defaultRoles : ['user']) as Role[],
    emailDomains: domains('emailDomains'),
    trustedDomains: domains('trustedDomains'),
    requireForDomains,
    jit: bool('jit', true),
    redirectUri,
    allowHttp,
  };
}
