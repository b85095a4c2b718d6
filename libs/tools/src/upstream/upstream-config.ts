import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigValidationError, PERMISSION_PATTERN, rateWindowMs } from '@app/core';
import { TOOL_CATEGORIES, ToolCategory } from '../provider/tool-provider';
import { parseUpstreamAuth, UpstreamAuth } from './upstream-auth';

/** How the gateway talks to an upstream: `legacy` is the 2025 `initialize` handshake, `auto` probes for 2026-07-28 first. */
export type UpstreamProtocol = 'auto' | 'legacy';

export interface UpstreamTimeouts {
  /** Handshake (spawn or HTTP connect, initialize or discover). */
  connectMs: number;
  /** One `tools/list` walk, all pages. */
  listMs: number;
  /** One `tools/call`; the pipeline's own (usually shorter) timeout applies as well. */
  callMs: number;
}

export interface UpstreamReconnect {
  /** First delay after a failure; doubles per failed attempt up to maxDelayMs, with jitter. */
  initialDelayMs: number;
  maxDelayMs: number;
}

interface UpstreamCommon {
  name: string;
  /** `upstream:<name>`: the catalogue's provider name for this upstream's tools. */
  providerName: string;
  category: ToolCategory;
  permissions: string[];
  idPrefix: string;
  enabled: boolean;
  rateLimit: { requests: number; window: string };
  protocol: UpstreamProtocol;
  timeouts: UpstreamTimeouts;
  reconnect: UpstreamReconnect;
  /** Ping interval while connected (0: never), so a dead upstream is noticed without traffic. */
  healthCheckMs: number;
  /** Calls in flight at once; more fail at once with BUSY instead of queueing behind a slow upstream. */
  maxConcurrentCalls: number;
  /** Whose credential a tool call carries (upstream-auth.ts); `gateway` unless declared. */
  auth: UpstreamAuth;
}

/** A child process spoken to over stdin/stdout; it gets exactly `env`, nothing inherited. */
export interface StdioUpstreamConfig extends UpstreamCommon {
  transport: 'stdio';
  command: string;
  args: string[];
  /** Resolved values (secrets included): never log. */
  env: Record<string, string>;
  cwd: string | undefined;
}

/** A Streamable HTTP endpoint, called with the gateway's own credentials for it. */
export interface HttpUpstreamConfig extends UpstreamCommon {
  transport: 'http';
  url: string;
  /** Resolved values (secrets included): never log. */
  headers: Record<string, string>;
}

export type UpstreamConfig = StdioUpstreamConfig | HttpUpstreamConfig;

export const UPSTREAM_DEFAULTS = {
  rateLimit: { requests: 60, window: '1m' },
  timeouts: { connectMs: 10_000, listMs: 10_000, callMs: 60_000 },
  reconnect: { initialDelayMs: 500, maxDelayMs: 30_000 },
  healthCheckMs: 15_000,
  maxConcurrentCalls: 64,
} as const;

/** Only variables with this prefix can be referenced: a config file cannot send JWT_SECRET to an upstream. */
export const UPSTREAM_SECRET_PATTERN = /^UPSTREAM_[A-Z0-9_]+$/;
const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const ID_PREFIX_PATTERN = /^[A-Za-z0-9_.:-]{0,64}$/;
const HEADER_NAME_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Names whose values are credentials: those must come from the environment, never from the file. */
const SENSITIVE_NAME = /auth|token|secret|passw|key|cookie|session|credential|private/i;
/** Headers the transport manages itself; setting them would break the protocol. */
const RESERVED_HEADERS = new Set(['mcp-session-id', 'mcp-protocol-version', 'content-type', 'accept', 'content-length', 'host']);

const COMMON_KEYS = [
  'name',
  'transport',
  'category',
  'permissions',
  'idPrefix',
  'enabled',
  'rateLimit',
  'protocol',
  'timeouts',
  'reconnect',
  'healthCheckMs',
  'maxConcurrentCalls',
  'auth',
];
const STDIO_KEYS = [...COMMON_KEYS, 'command', 'args', 'env', 'cwd'];
const HTTP_KEYS = [...COMMON_KEYS, 'url', 'headers'];

export interface UpstreamFileOptions {
  /** Directory relative `command` and `cwd` paths are resolved against (the file's own). */
  baseDir: string;
  /** The UPSTREAM_* variables, from the config module. */
  secrets: Readonly<Record<string, string>>;
}

/** Reads and validates MCP_UPSTREAMS_FILE; every problem is reported at once, each naming its entry. */
export function loadUpstreamsFile(path: string | undefined, secrets: Readonly<Record<string, string>>): UpstreamConfig[] {
  if (!path) return [];
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigValidationError([`MCP_UPSTREAMS_FILE ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  return parseUpstreams(text, { baseDir: dirname(resolve(path)), secrets });
}

export function parseUpstreams(text: string, options: UpstreamFileOptions): UpstreamConfig[] {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new ConfigValidationError([`MCP_UPSTREAMS_FILE is not valid JSON: ${(error as Error).message}`]);
  }
  const problems: string[] = [];
  if (!isObject(document) || !Array.isArray(document.upstreams)) {
    throw new ConfigValidationError(['MCP_UPSTREAMS_FILE must be a JSON object { "upstreams": [ ... ] }']);
  }
  for (const key of Object.keys(document)) {
    if (key !== 'upstreams' && key !== '$schema' && key !== '$comment') problems.push(`MCP_UPSTREAMS_FILE: unknown key "${key}"`);
  }
  const upstreams: UpstreamConfig[] = [];
  const names = new Set<string>();
  document.upstreams.forEach((entry: unknown, index: number) => {
    const label = isObject(entry) && typeof entry.name === 'string' ? `upstreams[${index}] "${entry.name}"` : `upstreams[${index}]`;
    const entryProblems: string[] = [];
    const parsed = parseEntry(entry, options, (message) => entryProblems.push(`${label}: ${message}`));
    const name = isObject(entry) ? entry.name : undefined;
    if (typeof name === 'string' && names.has(name)) entryProblems.push(`${label}: name is used by an earlier entry`);
    if (typeof name === 'string') names.add(name);
    problems.push(...entryProblems);
    if (parsed && entryProblems.length === 0) upstreams.push(parsed);
  });
  if (problems.length > 0) throw new ConfigValidationError(problems);
  return upstreams;
}

type Report = (message: string) => void;

function parseEntry(entry: unknown, options: UpstreamFileOptions, report: Report): UpstreamConfig | null {
  if (!isObject(entry)) {
    report('must be an object');
    return null;
  }
  const name = entry.name;
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    report('name must be 1-63 characters: lower-case letters, digits, "-" or "_", starting with a letter or digit');
  }
  const transport = entry.transport;
  if (transport !== 'stdio' && transport !== 'http') {
    report('transport must be "stdio" or "http"');
    return null;
  }
  for (const key of Object.keys(entry)) {
    if (!(transport === 'stdio' ? STDIO_KEYS : HTTP_KEYS).includes(key)) report(`unknown key "${key}" for transport ${transport}`);
  }

  const category = entry.category;
  if (!TOOL_CATEGORIES.includes(category as ToolCategory)) report(`category must be one of ${TOOL_CATEGORIES.join(', ')}`);
  const permissions = entry.permissions;
  if (!Array.isArray(permissions) || !permissions.every((p) => typeof p === 'string' && PERMISSION_PATTERN.test(p))) {
    report('permissions must be a list of permission names like "tools:execute" (it may be empty)');
  }
  const idPrefix = entry.idPrefix === undefined ? `${String(name)}.` : entry.idPrefix;
  // A prefix derived from a bad name is already reported as the name.
  if (
    (entry.idPrefix !== undefined || NAME_PATTERN.test(String(name))) &&
    (typeof idPrefix !== 'string' || !ID_PREFIX_PATTERN.test(idPrefix))
  ) {
    report('idPrefix must be at most 64 characters of letters, digits, "_", ".", ":" or "-" (it may be empty)');
  }
  const enabled = entry.enabled ?? true;
  if (typeof enabled !== 'boolean') report('enabled must be true or false');
  const protocol = entry.protocol ?? (transport === 'http' ? 'auto' : 'legacy');
  if (protocol !== 'auto' && protocol !== 'legacy') report('protocol must be "auto" or "legacy"');

  const rateLimit = entry.rateLimit ?? UPSTREAM_DEFAULTS.rateLimit;
  if (
    !isObject(rateLimit) ||
    !Number.isInteger(rateLimit.requests) ||
    (rateLimit.requests as number) < 1 ||
    typeof rateLimit.window !== 'string' ||
    rateWindowMs(rateLimit.window) === null
  ) {
    report('rateLimit must be { "requests": positive integer, "window": like "1m" }');
  }
  const timeouts = {
    connectMs: int(entry, ['timeouts', 'connectMs'], UPSTREAM_DEFAULTS.timeouts.connectMs, 100, 600_000, report),
    listMs: int(entry, ['timeouts', 'listMs'], UPSTREAM_DEFAULTS.timeouts.listMs, 100, 600_000, report),
    callMs: int(entry, ['timeouts', 'callMs'], UPSTREAM_DEFAULTS.timeouts.callMs, 100, 3_600_000, report),
  };
  const reconnect = {
    initialDelayMs: int(entry, ['reconnect', 'initialDelayMs'], UPSTREAM_DEFAULTS.reconnect.initialDelayMs, 10, 600_000, report),
    maxDelayMs: int(entry, ['reconnect', 'maxDelayMs'], UPSTREAM_DEFAULTS.reconnect.maxDelayMs, 10, 3_600_000, report),
  };
  if (reconnect.maxDelayMs < reconnect.initialDelayMs) report('reconnect.maxDelayMs must not be below reconnect.initialDelayMs');
  onlyKeys(entry.timeouts, 'timeouts', ['connectMs', 'listMs', 'callMs'], report);
  onlyKeys(entry.reconnect, 'reconnect', ['initialDelayMs', 'maxDelayMs'], report);
  const healthCheckMs = int(entry, ['healthCheckMs'], UPSTREAM_DEFAULTS.healthCheckMs, 0, 3_600_000, report);
  const maxConcurrentCalls = int(entry, ['maxConcurrentCalls'], UPSTREAM_DEFAULTS.maxConcurrentCalls, 1, 100_000, report);
  const auth = parseUpstreamAuth(entry.auth, transport, report, options.secrets);

  const common = {
    name: name as string,
    providerName: `upstream:${String(name)}`,
    category: category as ToolCategory,
    permissions: Array.isArray(permissions) ? [...new Set(permissions as string[])].sort() : [],
    idPrefix: idPrefix as string,
    enabled: enabled as boolean,
    rateLimit: isObject(rateLimit)
      ? { requests: rateLimit.requests as number, window: rateLimit.window as string }
      : { ...UPSTREAM_DEFAULTS.rateLimit },
    protocol: protocol as UpstreamProtocol,
    timeouts,
    reconnect,
    healthCheckMs,
    maxConcurrentCalls,
    auth,
  };
  return transport === 'stdio' ? parseStdio(entry, common, options, report) : parseHttp(entry, common, options, report);
}

function parseStdio(
  entry: Record<string, unknown>,
  common: UpstreamCommon,
  options: UpstreamFileOptions,
  report: Report,
): StdioUpstreamConfig {
  const env: Record<string, string> = {};
  if (entry.env !== undefined && !isObject(entry.env)) report('env must be an object of variable names to values');
  for (const [key, value] of Object.entries(isObject(entry.env) ? entry.env : {})) {
    if (!ENV_NAME_PATTERN.test(key)) {
      report(`env: "${key}" is not a valid variable name`);
      continue;
    }
    const resolved = secretOrLiteral(value, `env.${key}`, key, options.secrets, report);
    if (resolved !== undefined) env[key] = resolved;
  }
  const rawCommand = entry.command;
  let command = '';
  if (typeof rawCommand !== 'string' || rawCommand.trim() === '') {
    report('command is required: the executable to run (no shell is involved, so no pipes, quotes or variables)');
  } else if (rawCommand.includes('/')) {
    command = isAbsolute(rawCommand) ? rawCommand : resolve(options.baseDir, rawCommand);
  } else if (env.PATH === undefined) {
    report(
      `command "${rawCommand}" is not a path: give an absolute path, or set PATH in env (the process gets only the environment it is given)`,
    );
  } else {
    command = rawCommand;
  }
  const args = entry.args ?? [];
  if (!Array.isArray(args) || !args.every((arg) => typeof arg === 'string')) report('args must be a list of strings');
  const cwd = entry.cwd;
  if (cwd !== undefined && (typeof cwd !== 'string' || cwd === '')) report('cwd must be a directory path');
  return {
    ...common,
    transport: 'stdio',
    command,
    args: Array.isArray(args) ? (args as string[]) : [],
    env,
    cwd: typeof cwd === 'string' && cwd !== '' ? resolve(options.baseDir, cwd) : undefined,
  };
}

function parseHttp(
  entry: Record<string, unknown>,
  common: UpstreamCommon,
  options: UpstreamFileOptions,
  report: Report,
): HttpUpstreamConfig {
  let url = '';
  try {
    const parsed = new URL(String(entry.url));
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') report('url must start with http:// or https://');
    else if (parsed.username || parsed.password) report('url must not carry credentials: put them in headers, taken from the environment');
    else if (parsed.hash) report('url must not have a #fragment');
    else url = parsed.toString();
  } catch {
    report('url is required: the Streamable HTTP endpoint, e.g. https://mcp.example.com/mcp');
  }
  const headers: Record<string, string> = {};
  if (entry.headers !== undefined && !isObject(entry.headers)) report('headers must be an object of header names to values');
  for (const [key, value] of Object.entries(isObject(entry.headers) ? entry.headers : {})) {
    if (!HEADER_NAME_PATTERN.test(key)) {
      report(`headers: "${key}" is not a valid header name`);
      continue;
    }
    if (RESERVED_HEADERS.has(key.toLowerCase())) {
      report(`headers.${key}: managed by the MCP transport, cannot be set`);
      continue;
    }
    const resolved = secretOrLiteral(value, `headers.${key}`, key, options.secrets, report);
    if (resolved !== undefined) headers[key] = resolved;
  }
  return { ...common, transport: 'http', url, headers };
}

/**
 * A value written in the file (allowed only for names that do not look like credentials) or
 * `{ "fromEnv": "UPSTREAM_...", "prefix"?: "Bearer " }` taken from the environment. The
 * problem messages name the variable, never its value.
 */
function secretOrLiteral(
  value: unknown,
  where: string,
  name: string,
  secrets: Readonly<Record<string, string>>,
  report: Report,
): string | undefined {
  if (typeof value === 'string') {
    if (SENSITIVE_NAME.test(name)) {
      report(`${where}: looks like a credential, so it must be { "fromEnv": "UPSTREAM_..." } (secrets are never written in this file)`);
      return undefined;
    }
    return value;
  }
  if (!isObject(value) || typeof value.fromEnv !== 'string' || Object.keys(value).some((k) => k !== 'fromEnv' && k !== 'prefix')) {
    report(`${where}: must be a string or { "fromEnv": "UPSTREAM_...", "prefix"?: "..." }`);
    return undefined;
  }
  if (value.prefix !== undefined && typeof value.prefix !== 'string') {
    report(`${where}: prefix must be a string`);
    return undefined;
  }
  if (!UPSTREAM_SECRET_PATTERN.test(value.fromEnv)) {
    report(`${where}: fromEnv must name a variable starting with UPSTREAM_ (got "${value.fromEnv}")`);
    return undefined;
  }
  const secret = secrets[value.fromEnv];
  if (secret === undefined) {
    report(`${where}: environment variable ${value.fromEnv} is not set`);
    return undefined;
  }
  return `${(value.prefix as string | undefined) ?? ''}${secret}`;
}

function int(entry: Record<string, unknown>, path: string[], fallback: number, min: number, max: number, report: Report): number {
  let value: unknown = entry;
  for (const key of path) value = isObject(value) ? value[key] : undefined;
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    report(`${path.join('.')} must be an integer from ${min} to ${max}`);
    return fallback;
  }
  return value as number;
}

function onlyKeys(value: unknown, where: string, allowed: string[], report: Report): void {
  if (value === undefined) return;
  if (!isObject(value)) {
    report(`${where} must be an object`);
    return;
  }
  for (const key of Object.keys(value)) if (!allowed.includes(key)) report(`${where}: unknown key "${key}"`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
