/**
 * Whose credential reaches an upstream on a tool call (`auth` of an MCP_UPSTREAMS_FILE entry).
 *
 * - `gateway` (default): the gateway's own credential from `headers`/`env`, whoever calls.
 * - `user-secret`: each user's own personal token (stored write-only through the REST API,
 *   encrypted at rest), sent in `header` with `prefix` on a connection of that user's own. The
 *   gateway's `headers` are never sent on those connections.
 * - `user-oauth`, `token-exchange`: declared by the design (issue 17), not available yet: a file
 *   naming them is refused at start, so nobody believes an upstream is per-user when it is not.
 *
 * The catalogue connection (tools/list, health pings) of a per-user upstream still uses
 * `headers`: a listing credential of the gateway's, or none when the upstream lists anonymously.
 * Tool calls never go over it.
 */
export type UpstreamAuth = GatewayAuth | UserSecretAuth;

export interface GatewayAuth {
  mode: 'gateway';
}

export interface UserSecretAuth {
  mode: 'user-secret';
  /** The request header the user's secret is sent in. */
  header: string;
  /** Written before the secret (`Bearer `); empty for headers like X-Api-Key. */
  prefix: string;
  /** Where a user without a secret is sent to set one (URL elicitation, error message); absent: the REST route is named. */
  connectUrl: string | undefined;
  /** Per-user connections kept open while idle, then closed. */
  idleMs: number;
  /** Per-user connections open at once for this upstream; past it the least recently used idle one closes. */
  maxConnections: number;
}

export type UpstreamAuthMode = 'gateway' | 'user-secret' | 'user-oauth' | 'token-exchange';

export const USER_AUTH_DEFAULTS = { header: 'Authorization', prefix: 'Bearer ', idleMs: 300_000, maxConnections: 256 } as const;

const HEADER_NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const RESERVED_HEADERS = new Set(['mcp-session-id', 'mcp-protocol-version', 'content-type', 'accept', 'content-length', 'host']);
const AUTH_KEYS = ['mode', 'header', 'prefix', 'connectUrl', 'idleMs', 'maxConnections'];
const NOT_YET: Record<string, string> = {
  'user-oauth': "the gateway as each user's OAuth client of the upstream",
  'token-exchange': 'RFC 8693 token exchange at the identity provider',
};

/** Whether calls to the upstream carry each user's own credential (so they need a connection of that user's). */
export function isPerUser(auth: UpstreamAuth): auth is UserSecretAuth {
  return auth.mode !== 'gateway';
}

/**
 * `auth` as written in the file: `"gateway"`, `"user-secret"`, or an object with `mode` and the
 * mode's settings. Problems go to `report`; the result is `gateway` when the value is refused.
 */
export function parseUpstreamAuth(value: unknown, transport: 'stdio' | 'http', report: (message: string) => void): UpstreamAuth {
  if (value === undefined || value === 'gateway') return { mode: 'gateway' };
  const entry: Record<string, unknown> = typeof value === 'string' ? { mode: value } : isObject(value) ? value : {};
  if (!isObject(value) && typeof value !== 'string') {
    report('auth must be "gateway", "user-secret" or { "mode": ..., ... }');
    return { mode: 'gateway' };
  }
  const mode = entry.mode;
  if (typeof mode === 'string' && NOT_YET[mode]) {
    report(`auth.mode "${mode}" (${NOT_YET[mode]}) is not available in this version yet; use "gateway" or "user-secret"`);
    return { mode: 'gateway' };
  }
  if (mode !== 'gateway' && mode !== 'user-secret') {
    report('auth.mode must be one of gateway, user-secret (user-oauth and token-exchange are not available yet)');
    return { mode: 'gateway' };
  }
  for (const key of Object.keys(entry)) {
    if (!AUTH_KEYS.includes(key) || (mode === 'gateway' && key !== 'mode')) report(`auth: unknown key "${key}" for mode ${mode}`);
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
  let connectUrl: string | undefined;
  if (entry.connectUrl !== undefined) {
    try {
      const parsed = new URL(String(entry.connectUrl));
      if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error('scheme');
      connectUrl = parsed.toString();
    } catch {
      report('auth.connectUrl must be an http(s) URL: the page where users set their secret for this upstream');
    }
  }
  const idleMs = intSetting(entry.idleMs, 'idleMs', USER_AUTH_DEFAULTS.idleMs, 1_000, 86_400_000, report);
  const maxConnections = intSetting(entry.maxConnections, 'maxConnections', USER_AUTH_DEFAULTS.maxConnections, 1, 100_000, report);
  return { mode, header: String(header), prefix: String(prefix), connectUrl, idleMs, maxConnections };
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
