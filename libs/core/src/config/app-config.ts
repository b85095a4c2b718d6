import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { IdentityConfig, parseIdentityConfig } from './identity-config';

/**
 * The whole runtime configuration, read once from the environment at boot.
 * Nothing else in the code base reads process.env: inject APP_CONFIG instead.
 */
export interface AppConfig {
  env: 'development' | 'production' | 'test';
  isProduction: boolean;
  version: string;
  http: {
    port: number;
    host: string;
    bodyLimit: number;
    /** Fastify trustProxy: false, true, a hop count or a list of addresses/CIDRs. */
    trustProxy: boolean | number | string[];
    corsOrigins: string[];
    corsCredentials: boolean;
    shutdownGraceMs: number;
    /** From a request's first byte (or a new connection's start) to the end of its headers (slowloris, idle sockets). */
    headersTimeoutMs: number;
    /** From a request's first byte until it is fully received, body included (trickled bodies). */
    requestTimeoutMs: number;
    /**
     * How long a connection may sit idle between requests. Longer than the idle timeout of the
     * proxy in front, so the proxy, not us, closes an idle connection (no request races a close).
     */
    keepAliveTimeoutMs: number;
  };
  database: {
    /** Unset: the embedded PGlite database under dataDir. */
    url: string | undefined;
    /**
     * The table owner's URL, used only to apply migrations (DATABASE_MIGRATION_URL): the server then
     * runs as a role that cannot alter or disable anything (DATABASE_URL). Unset: DATABASE_URL.
     */
    migrationUrl: string | undefined;
    /**
     * The role the server runs as (DATABASE_APP_ROLE): after migrating, the owner grants it what the
     * server needs, and on audit_logs only SELECT and INSERT.
     */
    appRole: string | undefined;
    poolMax: number;
    ssl: boolean;
    runMigrations: boolean;
    statementTimeoutMs: number;
    connectTimeoutMs: number;
    /**
     * PostgreSQL outage breaker (networked PostgreSQL only): a `SELECT 1` on its own connection
     * every `heartbeatMs`, unanswered within `probeTimeoutMs`, opens it; only an answered one closes it.
     */
    heartbeatMs: number;
    probeTimeoutMs: number;
  };
  dataDir: string;
  redisUrl: string | undefined;
  /** Prefix of every Redis key and channel, so several deployments (or test runs) can share one Redis. */
  redisKeyPrefix: string;
  /**
   * How a Redis outage is noticed and its end proven (one breaker for every Redis user): a command
   * unanswered within `commandTimeoutMs` opens it, so does a PING on either connection (sent every
   * `heartbeatMs`) unanswered within `probeTimeoutMs`; only answered PINGs on both close it.
   */
  redisBreaker: { commandTimeoutMs: number; heartbeatMs: number; probeTimeoutMs: number };
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'; pretty: boolean };
  auth: {
    bcryptCost: number;
    accessTokenTtlSec: number;
    refreshTokenTtlSec: number;
    jwtIssuer: string;
    jwtAudience: string;
    /** Failed logins (wrong password or MFA code) within the window that lock the account. */
    lockoutThreshold: number;
    lockoutWindowSec: number;
    lockoutDurationSec: number;
    /** Per-client burst limit on the unauthenticated auth routes (login, register, refresh). */
    authRateLimit: number;
    authRateWindowSec: number;
    /** Default per-client limit on every other route. */
    defaultRateLimit: number;
    defaultRateWindowSec: number;
    /** Sessions idle longer than this are expired. */
    sessionIdleTimeoutSec: number;
    /** How often sessions' in-memory activity and counters are written, in one batched UPDATE (and at shutdown). */
    sessionFlushMs: number;
    /** The first administrator, created on first start when both are set. */
    adminEmail: string | undefined;
    adminPassword: string | undefined;
  };
  mfa: {
    issuer: string;
    smsSender: 'log' | 'http';
    smsHttpUrl: string | undefined;
    /** Development only: the log sender writes the SMS text (with the code) to the log. Off by default. */
    smsLogCodes: boolean;
    smsCodeTtlSec: number;
    smsMaxAttempts: number;
  };
  tools: {
    /** Absolute directory the filesystem tool may touch; created at start. */
    sandboxRoot: string;
    /** Largest file the filesystem tool reads or writes, in bytes. */
    fsMaxReadBytes: number;
    /** Hosts the fetch tool may reach: exact names/addresses or `*.suffix`, normalised like URL hosts. */
    httpAllowedHosts: string[];
    httpMaxBytes: number;
    httpTimeoutMs: number;
    /** Tests only: lets the fetch tool reach private/loopback addresses (never metadata ones). */
    httpAllowPrivate: boolean;
    /** Upper bound of a tool call's `options.timeout`, and the timeout when none is given. */
    maxTimeoutMs: number;
    defaultTimeoutMs: number;
  };
  toolExecutions: {
    /** Durable queue of async executions: whether this process runs queued work, how often it looks, how many at once. */
    queueEnabled: boolean;
    queuePollMs: number;
    queueConcurrency: number;
    /** Runs of an async execution (a lease that expired counts as one) before it is failed. */
    queueMaxAttempts: number;
    /** Added to a call's timeout to form its lease: how long a claimed execution whose process died stays claimed. */
    queueLeaseGraceMs: number;
    /** Async executions one user may have waiting in the queue (not yet started); more are refused with 429. */
    queueMaxPendingPerUser: number;
    /** Bound on the stored input and result of an execution (bytes of JSON); larger ones are kept as a preview. */
    maxStoredBytes: number;
  };
  mcp: {
    /**
     * Origins a browser may call the MCP endpoints from besides the endpoint's own (the Host header's
     * host and port): serialised origins (`https://app.example.com:8443`), compared whole. A bare
     * hostname in MCP_ALLOWED_ORIGINS stands for its http and https origins on the default ports.
     */
    allowedOrigins: string[];
    /** Host header values the MCP endpoints answer to (hostnames, any port): DNS-rebinding protection. */
    allowedHosts: string[];
    /** Tools per `tools/list` page. */
    pageSize: number;
    /** Lifetime of a single-use WebSocket ticket. */
    ticketTtlSec: number;
  };
  upstreams: {
    /** JSON file declaring the upstream MCP servers the gateway federates (MCP_UPSTREAMS_FILE); unset: none. */
    file: string | undefined;
    /**
     * The largest result (bytes of its JSON) an upstream tool call may return
     * (MCP_UPSTREAM_RESULT_MAX_BYTES); a larger one fails the call with RESULT_TOO_LARGE, never truncated.
     */
    resultMaxBytes: number;
    /**
     * How long the gateway holds a call open for a 2026-07-28 agent's answers when a 2025-era
     * upstream asked it something in the middle of the call (MCP_RELAY_HOLD_TIMEOUT_MS): an agent
     * that does not retry within it finds the call released (cancelled upstream, audited).
     */
    relayHoldMs: number;
  };
  /**
   * Streaming committed audit records (and signed chain checkpoints) to a SIEM. Off unless a sink is
   * configured; each sink keeps a durable cursor in audit_export_cursors.
   */
  auditExport: {
    /** POSTs batches of records as JSON (AUDIT_EXPORT_WEBHOOK_URL); unset: no webhook sink. */
    webhookUrl: string | undefined;
    /** HMAC-SHA256 key of the webhook signature header (AUDIT_EXPORT_WEBHOOK_SECRET or _FILE); unset: unsigned. */
    webhookSecret: string | undefined;
    /** One delivery attempt's deadline, connection to response. */
    webhookTimeoutMs: number;
    /** Appends records as JSON lines, fsync'd per batch (AUDIT_EXPORT_FILE, absolute); unset: no file sink. */
    file: string | undefined;
    /** Records per delivery. */
    batchSize: number;
    /** How often each sink looks for new records. */
    intervalMs: number;
    /** Retry backoff after a failed delivery: exponential from the base to the cap, with jitter. */
    retryBaseMs: number;
    retryMaxMs: number;
    /** How often a signed chain checkpoint joins the stream (0: never). */
    checkpointIntervalMs: number;
  };
  /**
   * The OAuth 2.1 authorization server for the MCP endpoints (libs/oauth). On by default outside
   * production; in production it needs OAUTH_ISSUER (https) and OAUTH_SIGNING_KEY.
   */
  oauth: {
    enabled: boolean;
    /**
     * The issuer identifier (OAUTH_ISSUER): the gateway's public origin, `https://gw.example.com`,
     * no path (metadata at `/.well-known/oauth-authorization-server`). It is also the origin of the
     * MCP endpoints' canonical URLs (token audiences). Unset: the address the server listens on.
     */
    issuer: string | undefined;
    accessTokenTtlSec: number;
    refreshTokenTtlSec: number;
    /** RFC 7591 dynamic client registration at /oauth/register (OAUTH_DYNAMIC_REGISTRATION); off by default. */
    dynamicRegistration: boolean;
    /** Client ID Metadata Documents: https client_id URLs fetched (SSRF-guarded, cached) as the client's metadata. */
    cimd: {
      enabled: boolean;
      /** Hosts whose client_id URLs are accepted (exact or `*.suffix`); empty: any public https host. */
      allowedHosts: string[];
      /** Scopes a CIMD client may be granted (OAUTH_CIMD_SCOPES); empty: every scope. */
      allowedScopes: string[];
      /** Tests only: fetch documents from private/loopback addresses over http or https with OAUTH_CIMD_CA_FILE trusted. */
      allowPrivate: boolean;
      /** Tests only: a PEM file of extra CA certificates for fetching documents. */
      caFile: string | undefined;
    };
  };
  /** Enterprise OpenID Connect identity providers (IDP_PROVIDERS, IDP_<NAME>_*, IDP_PROVIDERS_FILE); none by default. */
  identity: IdentityConfig;
  secrets: {
    /**
     * PKCS#8 PEM private key (EC P-256 → ES256, or RSA ≥ 2048 → RS256) the authorization server
     * signs access tokens with (OAUTH_SIGNING_KEY or _FILE); published as the JWKS. Outside
     * production, generated once and kept in DATA_DIR/development-secrets.json when unset.
     */
    oauthSigningKey: string;
    /** Bearer token our HTTP SMS sender presents to the SMS gateway. */
    smsHttpToken: string | undefined;
    /** HMAC key for access tokens. Generated per process outside production (tokens die with it). */
    jwtSecret: string;
    /** Key for secrets stored at rest (MFA seeds). */
    encryptionKey: string;
    /**
     * Earlier ENCRYPTION_KEYs (ENCRYPTION_KEY_PREVIOUS, comma-separated), still accepted for reading
     * what they encrypted (upstream credentials), which is re-encrypted under ENCRYPTION_KEY when used.
     */
    previousEncryptionKeys: string[];
    /**
     * Key of the audit chain's MACs and checkpoint signatures, never given to the database
     * (AUDIT_HMAC_KEY). Required in production; elsewhere, unset means one derived from a configured
     * JWT_SECRET, or else generated once and kept in DATA_DIR.
     */
    auditHmacKey: string | undefined;
    /** Every non-empty UPSTREAM_* variable: the only values MCP_UPSTREAMS_FILE may hand to an upstream ({"fromEnv": ...}). */
    upstreamSecrets: Readonly<Record<string, string>>;
    /** True when a secret above was generated because none was configured. */
    generated: string[];
  };
}

export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigValidationError';
  }
}

type Env = Record<string, string | undefined>;

class EnvReader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if ((allowed as readonly string[]).includes(value)) return value as T;
    this.problems.push(`${name} must be one of ${allowed.join(', ')} (got "${value}")`);
    return fallback;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const value = this.raw(name);
    if (value === undefined) return fallback;
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      this.problems.push(`${name} must be an integer from ${min} to ${max} (got "${value}")`);
      return fallback;
    }
    return Number(value);
  }

  bool(name: string, fallback: boolean): boolean {
    const value = this.raw(name)?.toLowerCase();
    if (value === undefined) return fallback;
    if (['true', '1', 'yes', 'on'].includes(value)) return true;
    if (['false', '0', 'no', 'off'].includes(value)) return false;
    this.problems.push(`${name} must be true or false (got "${value}")`);
    return fallback;
  }

  url(name: string, protocols: string[]): string | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    try {
      const parsed = new URL(value);
      if (!protocols.includes(parsed.protocol)) throw new Error('protocol');
      return value;
    } catch {
      // Never echo the value: URLs carry passwords.
      this.problems.push(`${name} must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`);
      return undefined;
    }
  }

  list(name: string): string[] {
    const value = this.raw(name);
    return value === undefined
      ? []
      : value
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  }

  secret(name: string, minLength: number, production: boolean, generated: string[]): string {
    const value = this.raw(name);
    if (value !== undefined) {
      if (value.length < minLength) this.problems.push(`${name} must be at least ${minLength} characters long`);
      else if (production) {
        // Never the value itself: only what is wrong with it.
        const weakness = secretWeakness(value);
        if (weakness) this.problems.push(`${name} is too easy to guess (${weakness}); generate one, e.g. openssl rand -base64 48`);
      }
      return value;
    }
    if (production) {
      this.problems.push(`${name} is required when NODE_ENV=production`);
      return '';
    }
    generated.push(name);
    return randomBytes(48).toString('base64url');
  }
}

/** Fewest distinct characters a production secret may have (32 random hex digits have about 15). */
const SECRET_MIN_DISTINCT = 10;
/** Least estimated entropy in bits (length × Shannon entropy per character); 32 random hex digits estimate ≈ 115. */
const SECRET_MIN_BITS = 96;

/**
 * Why a configured secret looks humanly chosen rather than generated, or null. A heuristic, not a
 * proof: it catches one repeated character, a short pattern repeated, an alphabet or digit run,
 * and text with too few distinct characters, which length alone lets through.
 */
export function secretWeakness(secret: string): string | null {
  const chars = [...secret];
  const counts = new Map<string, number>();
  for (const c of chars) counts.set(c, (counts.get(c) ?? 0) + 1);
  if (counts.size < SECRET_MIN_DISTINCT) return `only ${counts.size} distinct characters`;
  for (let period = 1; period <= chars.length / 2; period++) {
    if (chars.length % period === 0 && secret === secret.slice(0, period).repeat(chars.length / period)) {
      return 'a short pattern repeated';
    }
  }
  let stepsOfOne = 0;
  for (let i = 1; i < chars.length; i++) {
    if (Math.abs(chars[i].codePointAt(0)! - chars[i - 1].codePointAt(0)!) === 1) stepsOfOne++;
  }
  if (stepsOfOne * 2 >= chars.length - 1) return 'mostly a run of consecutive characters';
  let bits = 0;
  for (const count of counts.values()) bits -= count * Math.log2(count / chars.length);
  if (bits < SECRET_MIN_BITS) return `about ${Math.floor(bits)} bits of estimated entropy, at least ${SECRET_MIN_BITS} needed`;
  return null;
}

function parseTrustProxy(reader: EnvReader): boolean | number | string[] {
  const value = reader.raw('TRUST_PROXY');
  if (value === undefined || /^(false|0|no|off)$/i.test(value)) return false;
  if (/^(true|yes|on)$/i.test(value)) return true;
  if (/^\d+$/.test(value)) return Number(value);
  const entries = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const ipish = /^[0-9a-fA-F:.]+(\/\d{1,3})?$|^(loopback|linklocal|uniquelocal)$/;
  const bad = entries.filter((e) => !ipish.test(e));
  if (bad.length > 0) {
    reader.problems.push(`TRUST_PROXY must be true, false, a hop count or a comma list of addresses/CIDRs (bad: ${bad.join(', ')})`);
    return false;
  }
  return entries;
}

/**
 * TOOLS_HTTP_ALLOWED_HOSTS entries are normalised the way the URL parser normalises a request's
 * host (case, IDN to punycode, IPv4 shorthand, IPv6 brackets), so matching is a plain comparison.
 */
function parseAllowedHosts(reader: EnvReader): string[] {
  const hosts: string[] = [];
  for (const entry of reader.list('TOOLS_HTTP_ALLOWED_HOSTS')) {
    const wildcard = entry.startsWith('*.');
    const name = wildcard ? entry.slice(2) : entry;
    let host: string | undefined;
    try {
      const parsed = new URL(`http://${name}`);
      if (parsed.host === parsed.hostname && parsed.pathname === '/' && !parsed.username && !parsed.search && !parsed.hash) {
        host = parsed.hostname.replace(/\.$/, '');
      }
    } catch {
      host = undefined;
    }
    if (!host || (wildcard && (host.startsWith('[') || !host.includes('.') || /^[\d.]+$/.test(host)))) {
      reader.problems.push(`TOOLS_HTTP_ALLOWED_HOSTS entries must be host names, IP addresses or *.domain.suffix (got "${entry}")`);
      continue;
    }
    hosts.push(wildcard ? `*.${host}` : host);
  }
  return hosts;
}

const LOCAL_HOSTNAMES = ['localhost', '127.0.0.1', '[::1]'];

/**
 * MCP_ALLOWED_HOSTS defaults to the localhost forms plus the listen host (when it is a specific
 * address); hosts are hostnames (ports are ignored, IPv6 in brackets). MCP_ALLOWED_ORIGINS defaults
 * to none (only the endpoint's own origin); entries are origins like https://app.example.com:8443,
 * matched on scheme, host and port, or bare hostnames (their http and https origins, default ports).
 */
function parseMcp(r: EnvReader): AppConfig['mcp'] {
  const listen = r.string('HOST', '0.0.0.0').toLowerCase();
  const defaults = [...LOCAL_HOSTNAMES];
  if (!['0.0.0.0', '::', '[::]'].includes(listen)) defaults.push(listen.includes(':') && !listen.startsWith('[') ? `[${listen}]` : listen);
  const hosts = r.list('MCP_ALLOWED_HOSTS').map((h) => h.toLowerCase());
  for (const host of hosts) {
    if (!/^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)$/.test(host))
      r.problems.push(`MCP_ALLOWED_HOSTS entries must be hostnames without port (got "${host}")`);
  }
  const origins: string[] = [];
  for (const entry of r.list('MCP_ALLOWED_ORIGINS').map((o) => o.toLowerCase())) {
    const bareHost = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)$/.test(entry);
    const candidates = bareHost ? [`http://${entry}`, `https://${entry}`] : /^https?:\/\/[^/\s]+$/.test(entry) ? [entry] : [];
    const serialised = candidates.map(originOf).filter((origin): origin is string => origin !== undefined);
    if (serialised.length === 0 || serialised.length < candidates.length) {
      r.problems.push(`MCP_ALLOWED_ORIGINS entries must be origins like https://app.example.com:8443 or hostnames (got "${entry}")`);
      continue;
    }
    origins.push(...serialised);
  }
  return {
    allowedHosts: hosts.length > 0 ? hosts : defaults,
    allowedOrigins: [...new Set(origins)],
    pageSize: r.int('MCP_PAGE_SIZE', 100, 1, 1000),
    ticketTtlSec: r.int('MCP_TICKET_TTL', 30, 1, 300),
  };
}

/** The serialised origin of a URL (scheme://host[:port], default port elided), or undefined if it is not one. */
function originOf(value: string): string | undefined {
  try {
    const url = new URL(value);
    return url.origin === 'null' || url.username || url.password ? undefined : url.origin;
  } catch {
    return undefined;
  }
}

function optionalPath(path: string | undefined): string | undefined {
  return path === undefined ? undefined : resolve(path);
}

/** ENCRYPTION_KEY_PREVIOUS: earlier keys, comma-separated, each at least 32 characters (their values are never reported). */
function previousKeysOf(value: string | undefined, problems: string[]): string[] {
  const keys = (value ?? '')
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key !== '');
  if (keys.some((key) => key.length < 32)) problems.push('ENCRYPTION_KEY_PREVIOUS: every key must be at least 32 characters');
  return keys;
}

/** The UPSTREAM_* variables, by name: upstream credentials, referenced (never written) in MCP_UPSTREAMS_FILE. */
function upstreamSecretsOf(env: Env): Readonly<Record<string, string>> {
  const secrets: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (/^UPSTREAM_[A-Z0-9_]+$/.test(name) && value !== undefined && value.trim() !== '') secrets[name] = value.trim();
  }
  return Object.freeze(secrets);
}

/**
 * AUDIT_EXPORT_*: the URL must be http(s) (https in production) without credentials in it; the
 * webhook secret comes from the variable or a file (not both), at least 32 characters; the file
 * sink's directory must exist.
 */
function parseAuditExport(r: EnvReader, isProduction: boolean): AppConfig['auditExport'] {
  const webhookUrl = r.url('AUDIT_EXPORT_WEBHOOK_URL', isProduction ? ['https:'] : ['https:', 'http:']);
  if (webhookUrl !== undefined) {
    const parsed = new URL(webhookUrl);
    if (parsed.username || parsed.password) {
      r.problems.push('AUDIT_EXPORT_WEBHOOK_URL must not carry credentials; sign requests with AUDIT_EXPORT_WEBHOOK_SECRET instead');
    }
  }
  let webhookSecret = r.raw('AUDIT_EXPORT_WEBHOOK_SECRET');
  const secretFile = r.raw('AUDIT_EXPORT_WEBHOOK_SECRET_FILE');
  if (webhookSecret !== undefined && secretFile !== undefined) {
    r.problems.push('Set AUDIT_EXPORT_WEBHOOK_SECRET or AUDIT_EXPORT_WEBHOOK_SECRET_FILE, not both');
  } else if (secretFile !== undefined) {
    try {
      webhookSecret = readFileSync(secretFile, 'utf8').trim();
    } catch {
      r.problems.push('AUDIT_EXPORT_WEBHOOK_SECRET_FILE must name a readable file');
    }
  }
  if (webhookSecret !== undefined && webhookSecret.length < 32) {
    // Never the value: only what is wrong with it.
    r.problems.push('The audit export webhook secret must be at least 32 characters long (e.g. `openssl rand -base64 48`)');
  }
  if (webhookSecret !== undefined && webhookUrl === undefined && !r.problems.some((p) => p.startsWith('AUDIT_EXPORT_WEBHOOK_URL'))) {
    r.problems.push('AUDIT_EXPORT_WEBHOOK_SECRET(_FILE) needs AUDIT_EXPORT_WEBHOOK_URL');
  }
  const fileSetting = r.raw('AUDIT_EXPORT_FILE');
  let file: string | undefined;
  if (fileSetting !== undefined) {
    file = resolve(fileSetting);
    const directory = dirname(file);
    if (!existsSync(directory) || !statSync(directory).isDirectory()) {
      r.problems.push('AUDIT_EXPORT_FILE must be in an existing directory');
    } else if (existsSync(file) && !statSync(file).isFile()) {
      r.problems.push('AUDIT_EXPORT_FILE must name a regular file (appended to, created if missing)');
    }
  }
  const retryBaseMs = r.int('AUDIT_EXPORT_RETRY_BASE_MS', 1_000, 10, 600_000);
  const retryMaxMs = r.int('AUDIT_EXPORT_RETRY_MAX_MS', 60_000, 10, 3_600_000);
  if (retryBaseMs > retryMaxMs) r.problems.push('AUDIT_EXPORT_RETRY_BASE_MS must not exceed AUDIT_EXPORT_RETRY_MAX_MS');
  return {
    webhookUrl,
    webhookSecret,
    webhookTimeoutMs: r.int('AUDIT_EXPORT_WEBHOOK_TIMEOUT_MS', 10_000, 100, 600_000),
    file,
    batchSize: r.int('AUDIT_EXPORT_BATCH_SIZE', 100, 1, 10_000),
    intervalMs: r.int('AUDIT_EXPORT_INTERVAL_MS', 1_000, 10, 600_000),
    retryBaseMs,
    retryMaxMs,
    checkpointIntervalMs: r.int('AUDIT_EXPORT_CHECKPOINT_INTERVAL_MS', 300_000, 0, 86_400_000),
  };
}

/** Scope names the authorization server knows (libs/oauth documents what each allows). */
export const OAUTH_SCOPES = ['mcp:tools', 'mcp:read', 'offline_access'] as const;

/** OAUTH_*: issuer an origin (https in production), hosts like TOOLS_HTTP_ALLOWED_HOSTS, scopes from the catalogue. */
function parseOAuth(r: EnvReader, isProduction: boolean): AppConfig['oauth'] {
  const issuer = r.url('OAUTH_ISSUER', isProduction ? ['https:'] : ['https:', 'http:']);
  let normalisedIssuer: string | undefined;
  if (issuer !== undefined) {
    const parsed = new URL(issuer);
    if (parsed.pathname !== '/' || parsed.search || parsed.hash || parsed.username || parsed.password) {
      r.problems.push('OAUTH_ISSUER must be an origin like https://gw.example.com (no path, query or credentials)');
    } else normalisedIssuer = parsed.origin;
  }
  const enabled = r.bool('OAUTH_ENABLED', isProduction ? issuer !== undefined : true);
  if (enabled && isProduction && issuer === undefined)
    r.problems.push('OAUTH_ISSUER is required when OAUTH_ENABLED=true and NODE_ENV=production');
  const allowedHosts: string[] = [];
  for (const entry of r.list('OAUTH_CIMD_ALLOWED_HOSTS').map((h) => h.toLowerCase())) {
    if (!/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(entry)) {
      r.problems.push(`OAUTH_CIMD_ALLOWED_HOSTS entries must be host names or *.domain.suffix (got "${entry}")`);
    } else allowedHosts.push(entry);
  }
  const allowedScopes = r.list('OAUTH_CIMD_SCOPES');
  for (const scope of allowedScopes) {
    if (!(OAUTH_SCOPES as readonly string[]).includes(scope)) {
      r.problems.push(`OAUTH_CIMD_SCOPES entries must be among ${OAUTH_SCOPES.join(', ')} (got "${scope}")`);
    }
  }
  const allowPrivate = r.bool('OAUTH_CIMD_ALLOW_PRIVATE', false);
  if (allowPrivate && isProduction)
    r.problems.push('OAUTH_CIMD_ALLOW_PRIVATE is for tests only and must not be true when NODE_ENV=production');
  const caFile = optionalPath(r.raw('OAUTH_CIMD_CA_FILE'));
  if (caFile !== undefined && !existsSync(caFile)) r.problems.push('OAUTH_CIMD_CA_FILE must name a readable PEM file');
  return {
    enabled,
    issuer: normalisedIssuer,
    accessTokenTtlSec: r.int('OAUTH_ACCESS_TOKEN_TTL', 900, 30, 86_400),
    refreshTokenTtlSec: r.int('OAUTH_REFRESH_TOKEN_TTL', 14 * 86_400, 300, 365 * 86_400),
    dynamicRegistration: r.bool('OAUTH_DYNAMIC_REGISTRATION', false),
    cimd: { enabled: r.bool('OAUTH_CIMD_ENABLED', true), allowedHosts, allowedScopes, allowPrivate, caFile },
  };
}

/**
 * OAUTH_SIGNING_KEY or OAUTH_SIGNING_KEY_FILE: a PKCS#8 PEM private key, EC P-256 or RSA of at
 * least 2048 bits. Unset outside production: a new P-256 key (persisted by persistGeneratedSecrets).
 */
function parseOAuthSigningKey(r: EnvReader, enabled: boolean, isProduction: boolean, generated: string[]): string {
  let pem = r.raw('OAUTH_SIGNING_KEY');
  const file = r.raw('OAUTH_SIGNING_KEY_FILE');
  if (pem !== undefined && file !== undefined) {
    r.problems.push('Set OAUTH_SIGNING_KEY or OAUTH_SIGNING_KEY_FILE, not both');
    return '';
  }
  if (file !== undefined) {
    try {
      pem = readFileSync(file, 'utf8').trim();
    } catch {
      r.problems.push('OAUTH_SIGNING_KEY_FILE must name a readable file');
      return '';
    }
  }
  if (pem === undefined) {
    if (!enabled) return '';
    if (isProduction) {
      if (enabled)
        r.problems.push('OAUTH_SIGNING_KEY (or OAUTH_SIGNING_KEY_FILE) is required when OAUTH_ENABLED=true and NODE_ENV=production');
      return '';
    }
    generated.push('OAUTH_SIGNING_KEY');
    return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }
  const problem = signingKeyProblem(pem.replace(/\\n/g, '\n'));
  if (problem) r.problems.push(`OAUTH_SIGNING_KEY ${problem}`);
  return pem.replace(/\\n/g, '\n');
}

/** Why a PEM is not a usable OAuth signing key, or null. Never mentions the key itself. */
export function signingKeyProblem(pem: string): string | null {
  try {
    const key = createPrivateKey(pem);
    const details = key.asymmetricKeyDetails;
    if (key.asymmetricKeyType === 'ec' && details?.namedCurve === 'prime256v1') return null;
    if (key.asymmetricKeyType === 'rsa' && (details?.modulusLength ?? 0) >= 2048) return null;
    return 'must be an EC P-256 or an RSA (at least 2048 bits) private key';
  } catch {
    return 'must be a PEM-encoded private key (PKCS#8 or SEC1/PKCS#1)';
  }
}

export function loadConfig(env: Env = process.env, version = '0.0.0'): AppConfig {
  const r = new EnvReader(env);
  const nodeEnv = r.oneOf('NODE_ENV', ['development', 'production', 'test'] as const, 'development');
  const isProduction = nodeEnv === 'production';
  const generated: string[] = [];

  const corsOrigins = r.list('CORS_ORIGINS');
  const corsCredentials = r.bool('CORS_CREDENTIALS', false);
  if (corsCredentials && corsOrigins.includes('*')) {
    r.problems.push('CORS_ORIGINS must not be "*" when CORS_CREDENTIALS is true');
  }
  for (const origin of corsOrigins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      r.problems.push(`CORS_ORIGINS entries must be origins like https://app.example.com (got "${origin}")`);
    }
  }

  const dataDir = r.string('DATA_DIR', './data');
  const config: AppConfig = {
    env: nodeEnv,
    isProduction,
    version,
    http: {
      port: r.int('PORT', 3000, 0, 65535),
      // Loopback outside production: a development server (whose SMS sender logs codes) is not for the network.
      host: r.string('HOST', isProduction ? '0.0.0.0' : '127.0.0.1'),
      bodyLimit: r.int('BODY_LIMIT', 1024 * 1024, 1024, 100 * 1024 * 1024),
      trustProxy: parseTrustProxy(r),
      corsOrigins,
      corsCredentials,
      shutdownGraceMs: r.int('SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
      headersTimeoutMs: r.int('HTTP_HEADERS_TIMEOUT_MS', 10_000, 100, 600_000),
      requestTimeoutMs: r.int('HTTP_REQUEST_TIMEOUT_MS', 30_000, 100, 3_600_000),
      keepAliveTimeoutMs: r.int('HTTP_KEEP_ALIVE_TIMEOUT_MS', 75_000, 100, 3_600_000),
    },
    database: {
      url: r.url('DATABASE_URL', ['postgres:', 'postgresql:']),
      migrationUrl: r.url('DATABASE_MIGRATION_URL', ['postgres:', 'postgresql:']),
      appRole: r.raw('DATABASE_APP_ROLE'),
      poolMax: r.int('DATABASE_POOL_MAX', 10, 1, 500),
      ssl: r.bool('DATABASE_SSL', false),
      runMigrations: r.bool('RUN_MIGRATIONS', true),
      statementTimeoutMs: r.int('DATABASE_STATEMENT_TIMEOUT_MS', 15_000, 0, 3_600_000),
      connectTimeoutMs: r.int('DATABASE_CONNECT_TIMEOUT_MS', 3_000, 100, 120_000),
      heartbeatMs: r.int('DATABASE_HEARTBEAT_MS', 1_000, 100, 60_000),
      probeTimeoutMs: r.int('DATABASE_PROBE_TIMEOUT_MS', 2_000, 50, 60_000),
    },
    dataDir: isAbsolute(dataDir) ? dataDir : resolve(dataDir),
    redisUrl: r.url('REDIS_URL', ['redis:', 'rediss:']),
    redisKeyPrefix: r.string('REDIS_KEY_PREFIX', 'smcp:'),
    redisBreaker: {
      commandTimeoutMs: r.int('REDIS_COMMAND_TIMEOUT_MS', 1_000, 50, 60_000),
      heartbeatMs: r.int('REDIS_HEARTBEAT_MS', 1_000, 100, 60_000),
      probeTimeoutMs: r.int('REDIS_PROBE_TIMEOUT_MS', 1_000, 50, 60_000),
    },
    log: {
      level: r.oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info'),
      pretty: r.bool('LOG_PRETTY', false),
    },
    auth: {
      bcryptCost: r.int('BCRYPT_COST', 12, 4, 15),
      accessTokenTtlSec: r.int('ACCESS_TOKEN_TTL', 900, 30, 86_400),
      refreshTokenTtlSec: r.int('REFRESH_TOKEN_TTL', 7 * 86_400, 300, 90 * 86_400),
      jwtIssuer: r.string('JWT_ISSUER', 'secure-mcp-server'),
      jwtAudience: r.string('JWT_AUDIENCE', 'secure-mcp-api'),
      lockoutThreshold: r.int('LOCKOUT_THRESHOLD', 5, 1, 100),
      lockoutWindowSec: r.int('LOCKOUT_WINDOW', 900, 10, 86_400),
      lockoutDurationSec: r.int('LOCKOUT_DURATION', 900, 10, 86_400),
      authRateLimit: r.int('AUTH_RATE_LIMIT', 20, 1, 100_000),
      authRateWindowSec: r.int('AUTH_RATE_WINDOW', 60, 1, 86_400),
      defaultRateLimit: r.int('RATE_LIMIT', 600, 1, 10_000_000),
      defaultRateWindowSec: r.int('RATE_LIMIT_WINDOW', 60, 1, 86_400),
      sessionIdleTimeoutSec: r.int('SESSION_IDLE_TIMEOUT', 8 * 3600, 60, 30 * 86_400),
      sessionFlushMs: r.int('SESSION_FLUSH_MS', 5_000, 10, 30_000),
      adminEmail: r.raw('ADMIN_EMAIL')?.toLowerCase(),
      adminPassword: r.raw('ADMIN_PASSWORD'),
    },
    mfa: {
      issuer: r.string('MFA_ISSUER', 'Secure MCP Server'),
      smsSender: r.oneOf('SMS_SENDER', ['log', 'http'] as const, 'log'),
      smsHttpUrl: r.url('SMS_HTTP_URL', ['https:', 'http:']),
      smsLogCodes: r.bool('SMS_LOG_CODES', false),
      smsCodeTtlSec: r.int('SMS_CODE_TTL', 300, 30, 3600),
      smsMaxAttempts: r.int('SMS_MAX_ATTEMPTS', 5, 1, 20),
    },
    tools: {
      sandboxRoot: resolve(r.raw('TOOLS_SANDBOX_ROOT') ?? join(resolve(dataDir), 'sandbox')),
      fsMaxReadBytes: r.int('TOOLS_FS_MAX_READ_BYTES', 1024 * 1024, 1, 64 * 1024 * 1024),
      httpAllowedHosts: parseAllowedHosts(r),
      httpMaxBytes: r.int('TOOLS_HTTP_MAX_BYTES', 1024 * 1024, 1, 64 * 1024 * 1024),
      httpTimeoutMs: r.int('TOOLS_HTTP_TIMEOUT_MS', 10_000, 100, 600_000),
      httpAllowPrivate: r.bool('TOOLS_HTTP_ALLOW_PRIVATE', false),
      maxTimeoutMs: r.int('TOOLS_MAX_TIMEOUT_MS', 60_000, 100, 3_600_000),
      defaultTimeoutMs: r.int('TOOLS_DEFAULT_TIMEOUT_MS', 30_000, 100, 3_600_000),
    },
    toolExecutions: {
      queueEnabled: r.bool('TOOLS_QUEUE_ENABLED', true),
      queuePollMs: r.int('TOOLS_QUEUE_POLL_MS', 1_000, 10, 600_000),
      queueConcurrency: r.int('TOOLS_QUEUE_CONCURRENCY', 4, 1, 256),
      queueMaxAttempts: r.int('TOOLS_QUEUE_MAX_ATTEMPTS', 3, 1, 20),
      queueLeaseGraceMs: r.int('TOOLS_QUEUE_LEASE_GRACE_MS', 30_000, 100, 3_600_000),
      queueMaxPendingPerUser: r.int('TOOLS_QUEUE_MAX_PENDING_PER_USER', 100, 1, 1_000_000),
      maxStoredBytes: r.int('TOOLS_MAX_STORED_BYTES', 64 * 1024, 1024, 16 * 1024 * 1024),
    },
    mcp: parseMcp(r),
    upstreams: {
      file: optionalPath(r.raw('MCP_UPSTREAMS_FILE')),
      resultMaxBytes: r.int('MCP_UPSTREAM_RESULT_MAX_BYTES', 4 * 1024 * 1024, 1024, 256 * 1024 * 1024),
      relayHoldMs: r.int('MCP_RELAY_HOLD_TIMEOUT_MS', 5 * 60_000, 1_000, 3_600_000),
    },
    auditExport: parseAuditExport(r, isProduction),
    oauth: parseOAuth(r, isProduction),
    identity: parseIdentityConfig(env, isProduction, r.problems),
    secrets: {
      oauthSigningKey: '',
      smsHttpToken: r.raw('SMS_HTTP_TOKEN'),
      jwtSecret: r.secret('JWT_SECRET', 32, isProduction, generated),
      encryptionKey: r.secret('ENCRYPTION_KEY', 32, isProduction, generated),
      previousEncryptionKeys: previousKeysOf(r.raw('ENCRYPTION_KEY_PREVIOUS'), r.problems),
      // Not generated per process: the chain written under it must still verify after a restart.
      auditHmacKey: r.raw('AUDIT_HMAC_KEY'),
      upstreamSecrets: upstreamSecretsOf(env),
      generated,
    },
  };
  config.secrets.oauthSigningKey = parseOAuthSigningKey(r, config.oauth.enabled, isProduction, generated);

  if (isProduction && config.mfa.smsSender === 'log') {
    r.problems.push('SMS_SENDER must be "http" when NODE_ENV=production (the log sender writes codes to the log)');
  }
  if (isProduction && config.mfa.smsLogCodes) {
    r.problems.push('SMS_LOG_CODES writes one-time codes to the log and must not be true when NODE_ENV=production');
  }
  if (config.http.headersTimeoutMs > config.http.requestTimeoutMs) {
    // Node refuses a header deadline later than the whole request's.
    r.problems.push('HTTP_HEADERS_TIMEOUT_MS must not be greater than HTTP_REQUEST_TIMEOUT_MS');
  }
  if (config.mfa.smsSender === 'http' && !config.mfa.smsHttpUrl) {
    r.problems.push('SMS_HTTP_URL is required when SMS_SENDER=http');
  }
  if ((config.auth.adminEmail === undefined) !== (config.auth.adminPassword === undefined)) {
    r.problems.push('ADMIN_EMAIL and ADMIN_PASSWORD must be set together');
  }
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(config.redisKeyPrefix)) {
    r.problems.push('REDIS_KEY_PREFIX must be 1 to 64 characters of letters, digits, _ . : -');
  }
  if (config.tools.defaultTimeoutMs > config.tools.maxTimeoutMs) {
    r.problems.push('TOOLS_DEFAULT_TIMEOUT_MS must not exceed TOOLS_MAX_TIMEOUT_MS');
  }
  if (config.tools.sandboxRoot === resolve('/')) {
    r.problems.push('TOOLS_SANDBOX_ROOT must not be the file system root');
  }
  const auditKey = config.secrets.auditHmacKey;
  if (auditKey === undefined && isProduction) r.problems.push('AUDIT_HMAC_KEY is required when NODE_ENV=production');
  if (auditKey !== undefined && (auditKey.length < 32 || new Set(auditKey).size < 8)) {
    r.problems.push('AUDIT_HMAC_KEY must be at least 32 characters long and random (e.g. `openssl rand -base64 48`)');
  }
  if (config.database.migrationUrl && !config.database.url) {
    r.problems.push('DATABASE_MIGRATION_URL needs DATABASE_URL (the embedded database has one role)');
  }
  if (config.database.appRole !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(config.database.appRole)) {
    r.problems.push('DATABASE_APP_ROLE must be a plain lower-case PostgreSQL role name (letters, digits, _)');
  }
  if (config.database.appRole !== undefined && !config.database.url) {
    r.problems.push('DATABASE_APP_ROLE needs DATABASE_URL (the embedded database has one role)');
  }
  if (isProduction && config.tools.httpAllowPrivate) {
    r.problems.push('TOOLS_HTTP_ALLOW_PRIVATE is for tests only and must not be true when NODE_ENV=production');
  }
  if (r.problems.length > 0) throw new ConfigValidationError(r.problems);
  return config;
}
