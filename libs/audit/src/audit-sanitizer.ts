/**
 * Audit rows are kept forever and read by many, so nothing secret may reach them and nothing
 * may grow them without bound. Everything the caller hands over passes through here first; the
 * output is plain JSON that jsonb stores and gives back unchanged (which the hash chain needs).
 */

export const REDACTED = '[REDACTED]';

export const AUDIT_LIMITS = {
  /** Longest string value kept in details/metadata (characters). */
  maxString: 1024,
  maxKeyLength: 128,
  /** Items kept per array and members per object. */
  maxEntries: 100,
  maxDepth: 8,
  /** Serialised size cap for details and for metadata, each. */
  maxJsonBytes: 16 * 1024,
} as const;

/**
 * Keys whose values are secrets wherever they appear, compared lower-case with separators removed.
 * Only names that mean a secret in any position: a bare `code` does not (an error code, a status
 * code), so it is redacted by exact path instead (SECRET_PATHS).
 */
const SECRET_KEYS = new Set([
  'mfacode',
  'currentcode',
  'totpcode',
  'smscode',
  'otp',
  'pin',
  'backupcode',
  'backupcodes',
  'ticket',
  'cookie',
  'cookies',
  'setcookie',
  'signature',
]);

/**
 * Exact paths (from the root of details or metadata, keys as given) whose values are secrets
 * though their key name alone is not: the one-time code of the MFA routes, handed over on its own
 * or as the request body.
 */
export const SECRET_PATHS: ReadonlySet<string> = new Set(['code', 'body.code']);

/** Any key containing one of these is a secret too (newPassword, tokenHash, clientSecret, x-api-key…). */
const SECRET_FRAGMENTS = ['password', 'passwd', 'passphrase', 'secret', 'token', 'apikey', 'privatekey', 'authorization', 'credential'];

/** Secrets that sometimes travel inside ordinary strings (a URL, an error message, a header dump). */
const SECRET_PATTERNS: Array<[RegExp, string]> = [
  [/\bBearer\s+[A-Za-z0-9._~+/-]+=*/gi, `Bearer ${REDACTED}`],
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, REDACTED],
  [/([?&](?:access_token|refresh_token|id_token|token|ticket|code|api_key|apikey|key|secret|password)=)[^&#\s]*/gi, `$1${REDACTED}`],
];

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * What every string SECRET_PATTERNS, NUL removal or LONE_SURROGATE could change contains: `?` or
 * `&`, `bearer` or `eyJ` (in any case here: a superset), a NUL or a surrogate. A string without
 * any (identifiers, statuses, most messages) is kept as it is after this one test instead of five
 * replaces: the sanitiser was ~1.7% of an MCP tool call's CPU in the P3 profile.
 */
const MAY_NEED_CLEANING = /[\u0000\uD800-\uDFFF?&]|bearer|eyj/i;

/** isSecretKey's answers for the keys seen lately (object keys repeat; bounded, it starts over when full). */
const SECRET_KEY_CACHE = new Map<string, boolean>();
const MAX_CACHED_KEYS = 1024;

export function isSecretKey(key: string): boolean {
  let secret = SECRET_KEY_CACHE.get(key);
  if (secret === undefined) {
    secret = secretKeyName(key);
    if (SECRET_KEY_CACHE.size >= MAX_CACHED_KEYS) SECRET_KEY_CACHE.clear();
    SECRET_KEY_CACHE.set(key, secret);
  }
  return secret;
}

function secretKeyName(key: string): boolean {
  const normalised = key.toLowerCase().replace(/[^a-z0-9]/g, '');
  return SECRET_KEYS.has(normalised) || SECRET_FRAGMENTS.some((fragment) => normalised.includes(fragment));
}

/** Postgres text and jsonb refuse NUL and lone surrogates; secrets embedded in text are masked. */
function cleanString(value: string, max: number): string {
  if (value.length <= max && !MAY_NEED_CLEANING.test(value)) return value;
  let text = value.replace(/\u0000/g, '');
  for (const [pattern, replacement] of SECRET_PATTERNS) text = text.replace(pattern, replacement);
  if (text.length > max) text = `${text.slice(0, max)}…[truncated]`;
  // After truncation, which may have split a surrogate pair.
  return text.replace(LONE_SURROGATE, '\uFFFD');
}

/** The path of `key` under `parent` ('' is the root); array items keep their array's path plus []. */
function childPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

function cleanValue(value: unknown, depth: number, ancestors: WeakSet<object>, path: string): unknown {
  switch (typeof value) {
    case 'string':
      return cleanString(value, AUDIT_LIMITS.maxString);
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return `[binary ${value.byteLength} bytes]`;
  const object = value as object;
  if (depth >= AUDIT_LIMITS.maxDepth) return '[truncated: too deep]';
  if (ancestors.has(object)) return '[circular]';
  ancestors.add(object);
  try {
    if (object instanceof Error) {
      return { name: cleanString(object.name, AUDIT_LIMITS.maxKeyLength), message: cleanString(object.message, AUDIT_LIMITS.maxString) };
    }
    if (Array.isArray(object) || object instanceof Set) {
      const items = [...(object as Iterable<unknown>)];
      const kept = items.slice(0, AUDIT_LIMITS.maxEntries).map((item) => cleanValue(item, depth + 1, ancestors, `${path}[]`) ?? null);
      if (items.length > kept.length) kept.push(`…[${items.length - kept.length} more]`);
      return kept;
    }
    const source = object instanceof Map ? Object.fromEntries(object) : (object as Record<string, unknown>);
    return cleanObject(source, depth, ancestors, path);
  } finally {
    ancestors.delete(object);
  }
}

function cleanObject(source: Record<string, unknown>, depth: number, ancestors: WeakSet<object>, path: string): Record<string, unknown> {
  const keys = Object.keys(source);
  const entries: Array<[string, unknown]> = [];
  for (const key of keys.slice(0, AUDIT_LIMITS.maxEntries)) {
    const cleanKey = cleanString(key, AUDIT_LIMITS.maxKeyLength);
    const keyPath = childPath(path, key);
    if (isSecretKey(key) || SECRET_PATHS.has(keyPath)) {
      entries.push([cleanKey, REDACTED]);
      continue;
    }
    const cleaned = cleanValue(source[key], depth + 1, ancestors, keyPath);
    if (cleaned !== undefined) entries.push([cleanKey, cleaned]);
  }
  if (keys.length > AUDIT_LIMITS.maxEntries) entries.push(['…', `[${keys.length - AUDIT_LIMITS.maxEntries} more keys]`]);
  // fromEntries defines own properties, so a "__proto__" key stays data and cannot touch the prototype.
  return Object.fromEntries(entries);
}

/** Sanitises `details` or `metadata`: always a plain JSON object, secrets redacted, size bounded. */
export function sanitizeAuditData(value: unknown): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  const cleaned = cleanValue(value, 0, new WeakSet(), '');
  const object =
    cleaned !== null && typeof cleaned === 'object' && !Array.isArray(cleaned)
      ? (cleaned as Record<string, unknown>)
      : { value: cleaned ?? null };
  const bytes = Buffer.byteLength(JSON.stringify(object));
  if (bytes > AUDIT_LIMITS.maxJsonBytes) {
    return { truncated: true, originalBytes: bytes, keys: Object.keys(object).slice(0, 20) };
  }
  return object;
}

/** Sanitises a top-level text column (resource, user agent, ip). */
export function sanitizeAuditText(value: unknown, max: number): string | null {
  if (value === undefined || value === null || value === '') return null;
  return cleanString(String(value), max);
}
