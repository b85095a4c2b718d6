import type { FastifyBaseLogger } from 'fastify';
import pino, { Bindings, ChildLoggerOptions, LogFn, Logger } from 'pino';
import type { AppConfig } from '../config/app-config';
import { serializeError } from './error-serializer';
import { LineGatherer } from './line-gatherer';

/**
 * Keys never written to a log, at any of the depths we log objects: names that mean a secret
 * wherever they appear. A bare `code` does not (error and status codes), see SECRET_PATHS.
 */
const SECRET_KEYS = [
  'password',
  'newPassword',
  'currentPassword',
  'token',
  'accessToken',
  'refreshToken',
  'apiKey',
  'secret',
  'mfaCode',
  'currentCode',
  'backupCodes',
  'ticket',
  'authorization',
  'cookie',
];
/** Exact paths of secrets whose key name alone is not one: the one-time code of the MFA routes' body. */
const SECRET_PATHS = ['body.code', 'req.body.code', 'request.body.code'];
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  ...SECRET_PATHS,
  ...SECRET_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]),
];

/**
 * `mixin`: fields added to every line (tracing passes one that reads the active trace context, so
 * lines of code that has no scope at hand, such as repositories, are correlated too while it runs).
 * `bufferLines`: gather lines into fewer writes (the server; see below).
 */
export function createRootLogger(config: AppConfig, options: { mixin?: () => object; bufferLines?: boolean } = {}): Logger {
  const settings: pino.LoggerOptions = {
    mixin: options.mixin,
    level: config.log.level,
    base: { service: 'secure-mcp-server', version: config.version },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    // Errors are written from an allow-list of fields, never whole (see serializeError).
    serializers: { err: serializeError, error: serializeError },
    messageKey: 'msg',
    transport: config.log.pretty ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
  };
  if (config.log.pretty || !options.bufferLines) return pino(settings);
  // The server's lines (bufferLines) are gathered up to LOG_BUFFER_BYTES (or LOG_FLUSH_MS) per write
  // to stdout instead of one write per line: with a line per request, that write was about a
  // quarter of a cached read's CPU. LineGatherer gathers them (an array, joined once per batch:
  // SonicBoom's own gathering measured every line and its whole pending buffer in bytes) and
  // hands each batch to pino's destination, which writes it synchronously, as pino's default
  // destination does: an asynchronous write (a thread-pool round trip per batch) cost about 8 µs
  // more CPU per request of P1 than a synchronous one. A write blocks only while stdout's reader
  // is behind by a whole pipe buffer. Lines still gathered are written on exit and beforeExit; only
  // a SIGKILL can lose the last LOG_FLUSH_MS of lines (the audit trail is in the database).
  // Not the CLI's: its command output shares stdout with its lines, in order.
  return pino(settings, new LineGatherer(pino.destination({ dest: 1, sync: true, minLength: 0 }), LOG_BUFFER_BYTES, LOG_FLUSH_MS));
}

/** Bytes of log lines gathered before a write to stdout. */
const LOG_BUFFER_BYTES = 4096;
/** The longest a line waits in that buffer, in milliseconds. */
const LOG_FLUSH_MS = 100;

/**
 * Fastify's `childLoggerFactory`: `request.log` is built on first use. Fastify builds a child
 * logger for every request, and pino redacts a child's bindings as it builds it, which with our
 * wildcard paths was a visible share of a cached read; our code never logs through `request.log` (the request
 * line and errors carry the request id themselves), so most requests never need one.
 */
export function lazyChildLogger(parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  return new LazyChildLogger(parent, bindings, options) as unknown as FastifyBaseLogger;
}

class LazyChildLogger {
  private instance: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly childBindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  private get log(): FastifyBaseLogger {
    return (this.instance ??= this.parent.child(this.childBindings, this.options));
  }

  get level(): string {
    return this.instance?.level ?? this.options.level ?? this.parent.level;
  }

  set level(level: string) {
    this.log.level = level;
  }

  fatal(...args: Parameters<LogFn>): void {
    this.log.fatal(...args);
  }

  error(...args: Parameters<LogFn>): void {
    this.log.error(...args);
  }

  warn(...args: Parameters<LogFn>): void {
    this.log.warn(...args);
  }

  info(...args: Parameters<LogFn>): void {
    this.log.info(...args);
  }

  debug(...args: Parameters<LogFn>): void {
    this.log.debug(...args);
  }

  trace(...args: Parameters<LogFn>): void {
    this.log.trace(...args);
  }

  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.log.child(bindings, options);
  }
}
