/**
 * Whose credential reaches an upstream on a tool call (`auth` of an MCP_UPSTREAMS_FILE entry).
 *
 * - `gateway` (default): the gateway's own credential from `headers`/`env`, whoever calls.
 * - `user-secret`: each user's own personal token (stored write-only through the REST API,
 *   encrypted at rest), sent in `header` with `prefix` on a connection of that user's own. The
 *   gateway's `headers` are never sent on those connections.
 * - `user-oauth`: each user connects their own account at the upstream's authorization server
 *   once, through the gateway's connect page (authorization code + PKCE + `resource`); the gateway
 *   is the upstream's OAuth client, stores the user's tokens encrypted and refreshes them.
 * - `token-exchange`: the caller's identity exchanged at the enterprise IdP (RFC 8693).
 *
 * The catalogue connection (tools/list, health pings) of a per-user upstream still uses
 * `headers`: a listing credential of the gateway's, or none when the upstream lists anonymously.
 * Tool calls never go over it.
 */
export type UpstreamAuth = GatewayAuth | UserSecretAuth | TokenExchangeAuth | UserOAuthAuth;

export interface GatewayAuth {
  mode: 'gateway';
}

/** How the per-user connections of an upstream carry the credential and are pooled. */
export interface PerUserConnections {
  /** The request header the credential is sent in. */
  header: string;
  /** Written before the secret (`Bearer `); empty for headers like X-Api-Key. */
  prefix: string;
  /** Per-user connections kept open while idle, then closed. */
  idleMs: number;
  /** Per-user connections open at once for this upstream; past it the least recently used idle one closes. */
  maxConnections: number;
}

export interface UserSecretAuth extends PerUserConnections {
  mode: 'user-secret';
  /** Where a user without a secret is sent to set one (URL elicitation, error message); absent: the REST route is named. */
  connectUrl: string | undefined;
}

/**
 * RFC 8693 at the enterprise IdP: the gateway presents a short-lived JWT it signs about the caller
 * (subject = the user's id, OAUTH_SIGNING_KEY) and gets an access token for the upstream's
 * audience, cached per user until shortly before it expires.
 */
export interface TokenExchangeAuth extends PerUserConnections {
  mode: 'token-exchange';
  tokenEndpoint: string;
  clientId: string;
  /** Resolved from the environment: never log. */
  clientSecret: string;
  audience: string;
  resource: string | undefined;
  scope: string | undefined;
  /** `iss` of the subject token the gateway signs (what the IdP is configured to trust). */
  subjectIssuer: string;
  /**
   * What is exchanged: `gateway` (default), a JWT the gateway signs about the caller; `caller-idp`,
   * the enterprise IdP's own access token the caller authenticated to the gateway with (subject
   * type access_token), so the IdP sees its own user. That token is only ever sent to the IdP's
   * token endpoint, never to the upstream (no passthrough); a caller who signed in otherwise has none.
   */
  subjectToken: 'gateway' | 'caller-idp';
}

/**
 * The gateway as each user's OAuth client of the upstream. The authorization server is found
 * through the upstream's RFC 9728 protected-resource metadata (or given as `issuer`), its
 * endpoints through RFC 8414 / OpenID discovery. The gateway identifies itself with a client id
 * registered at that server (and its secret, from the environment, for a confidential client).
 */
export interface UserOAuthAuth extends PerUserConnections {
  mode: 'user-oauth';
  clientId: string;
  /** Resolved from the environment: never log. Absent: a public client (PKCE only). */
  clientSecret: string | undefined;
  /** The authorization server's issuer, when the upstream publishes no protected-resource metadata. */
  issuer: string | undefined;
  /** Scopes asked for (space-separated); `offline_access` is added so a refresh token is issued. */
  scope: string | undefined;
  /** The RFC 8707 resource the tokens are bound to; the upstream's URL unless given. */
  resource: string | undefined;
}

export type UpstreamAuthMode = 'gateway' | 'user-secret' | 'user-oauth' | 'token-exchange';

export const USER_AUTH_DEFAULTS = { header: 'Authorization', prefix: 'Bearer ', idleMs: 300_000, maxConnections: 256 } as const;

const HEADER_NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const RESERVED_HEADERS = new Set(['mcp-session-id', 'mcp-protocol-version', 'content-type', 'accept', 'content-length', 'host']);
const AUTH_KEYS = ['mode', 'header', 'prefix', 'idleMs', 'maxConnections'];
const MODE_KEYS: Record<string, string[]> = {
  'user-secret': ['connectUrl'],
  'token-exchange': ['tokenEndpoint', 'clientId', 'clientSecret', 'audience', 'resource', 'scope', 'subjectIssuer', 'subjectToken'],
  'user-oauth': ['clientId', 'clientSecret', 'issuer', 'scope', 'resource'],
};
const UPSTREAM_SECRET_PATTERN = /^UPSTREAM_[A-Z0-9_]+$/;

/** Whether calls to the upstream carry each user's own credential (so they need a connection of that user's). */
export function isPerUser(auth: UpstreamAuth): auth is UserSecretAuth | TokenExchangeAuth | UserOAuthAuth {
  return auth.mode !== 'gateway';
}

/**
 * `auth` as written in the file: `"gateway"`, `"user-secret"`, or an object with `mode` and the
 * mode's settings. Problems go to `report`; the result is `gateway` when the value is refused.
 */
export function parseUpstreamAuth(
  value: unknown,
  transport: 'stdio' | 'http',
  report: (message: string) => void,
  secrets: Readonly<Record<string, string>> = {},
): UpstreamAuth {
  if (value === undefined || value === 'gateway') return { mode: 'gateway' };
  const entry: Record<string, unknown> = typeof value === 'string' ? { mode: value } : isObject(value) ? value : {};
  if (!isObject(value) && typeof value !== 'string') {
    report('auth must be "gateway", "user-secret" or { "mode": ..., ... }');
    return { mode: 'gateway' };
  }
  const mode = entry.mode;
  if (mode !== 'gateway' && mode !== 'user-secret' && mode !== 'token-exchange' && mode !== 'user-oauth') {
    report('auth.mode must be one of gateway, user-secret, user-oauth, token-exchange');
    return { mode: 'gateway' };
  }
  for (const key of Object.keys(entry)) {
    const known = AUTH_KEYS.includes(key) || (MODE_KEYS[mode] ?? []).includes(key);
    if (!known || (mode === 'gateway' && key !== 'mode')) report(`auth: unknown key "${key}" for mode ${mode}`);
  }
  if (mode === 'gateway') return { mode: 'gateway' };
  if (transport !== 'http') {
    report(`auth.mode ${mode} needs transport "http" (a stdio upstream is one process shared by every user)`);
  }
  const header = entry.header ?? USER_AUTH_DEFAULTS.header;
  if (typeof header !== 'string' || !HEADER_NAME_PATTERN.test(header) || RESERVED_HEADERS.has(header.toLowerCase())) {
    report('auth.header must be a header name the MCP transport does not manage itself (default "Authorization")');
  }
  const prefix = entry.prefix ?? (String(header).toLowerCase() === 'authorization' ? USER_AUTH_DEFAULTS.prefix : '');
  if (typeof prefix !== 'string' || /[\r\n]/.test(prefix)) report('auth.prefix must be a string on one line, like "Bearer "');
  const idleMs = intSetting(entry.idleMs, 'idleMs', USER_AUTH_DEFAULTS.idleMs, 1_000, 86_400_000, report);
  const maxConnections = intSetting(entry.maxConnections, 'maxConnections', USER_AUTH_DEFAULTS.maxConnections, 1, 100_000, report);
  const connections = { header: String(header), prefix: String(prefix), idleMs, maxConnections };
  if (mode === 'user-secret') {
    const connectUrl =
      entry.connectUrl === undefined
        ? undefined
        : httpUrl(entry.connectUrl, 'connectUrl', report, 'the page where users set their secret for this upstream');
    return { mode, ...connections, connectUrl };
  }
  if (mode === 'user-oauth') {
    const clientId = requiredString(entry.clientId, 'clientId', report);
    const clientSecret = entry.clientSecret === undefined ? undefined : fromEnv(entry.clientSecret, secrets, report);
    // Kept as written: an issuer identifier is compared exactly (RFC 8414 §3.3), a trailing "/" included.
    const issuer =
      entry.issuer === undefined ||
      httpUrl(entry.issuer, 'issuer', report, "the upstream's authorization server (its issuer)") === undefined
        ? undefined
        : String(entry.issuer);
    const scope = entry.scope === undefined ? undefined : requiredString(entry.scope, 'scope', report);
    const resource =
      entry.resource === undefined ? undefined : httpUrl(entry.resource, 'resource', report, 'the upstream as an RFC 8707 resource');
    return { mode, ...connections, clientId, clientSecret, issuer, scope, resource };
  }
  const tokenEndpoint = httpUrl(entry.tokenEndpoint, 'tokenEndpoint', report, "the IdP's token endpoint (RFC 8693 token exchange)") ?? '';
  const clientId = requiredString(entry.clientId, 'clientId', report);
  const audience = requiredString(entry.audience, 'audience', report);
  const resource =
    entry.resource === undefined ? undefined : httpUrl(entry.resource, 'resource', report, 'the upstream as an RFC 8707 resource');
  const scope = entry.scope === undefined ? undefined : requiredString(entry.scope, 'scope', report);
  const subjectIssuer =
    entry.subjectIssuer === undefined ? 'secure-mcp-gateway' : requiredString(entry.subjectIssuer, 'subjectIssuer', report);
  const clientSecret = fromEnv(entry.clientSecret, secrets, report);
  const subjectToken = entry.subjectToken ?? 'gateway';
  if (subjectToken !== 'gateway' && subjectToken !== 'caller-idp') report('auth.subjectToken must be "gateway" or "caller-idp"');
  return {
    mode,
    ...connections,
    tokenEndpoint,
    clientId,
    clientSecret,
    audience,
    resource,
    scope,
    subjectIssuer,
    subjectToken: subjectToken === 'caller-idp' ? 'caller-idp' : 'gateway',
  };
}

function httpUrl(value: unknown, key: string, report: (message: string) => void, what: string): string | undefined {
  try {
    const parsed = new URL(String(value));
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error('scheme');
    if (parsed.username || parsed.password) throw new Error('credentials');
    return parsed.toString();
  } catch {
    report(`auth.${key} must be an http(s) URL without credentials: ${what}`);
    return undefined;
  }
}

function requiredString(value: unknown, key: string, report: (message: string) => void): string {
  if (typeof value !== 'string' || value.trim() === '' || /[\r\n]/.test(value)) {
    report(`auth.${key} is required: a non-empty string on one line`);
    return '';
  }
  return value;
}

/** The client secret: only ever `{ "fromEnv": "UPSTREAM_..." }` (secrets are never written in the file). */
function fromEnv(value: unknown, secrets: Readonly<Record<string, string>>, report: (message: string) => void): string {
  const name = isObject(value) && Object.keys(value).length === 1 ? value.fromEnv : undefined;
  if (typeof name !== 'string' || !UPSTREAM_SECRET_PATTERN.test(name)) {
    report('auth.clientSecret must be { "fromEnv": "UPSTREAM_..." } (secrets are never written in this file)');
    return '';
  }
  const secret = secrets[name];
  if (secret === undefined) report(`auth.clientSecret: environment variable ${name} is not set`);
  return secret ?? '';
}

function intSetting(value: unknown, key: string, fallback: number, min: number, max: number, report: (message: string) => void): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    report(`auth.${key} must be an integer from ${min} to ${max}`);
    return fallback;
  }
  return value as number;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
