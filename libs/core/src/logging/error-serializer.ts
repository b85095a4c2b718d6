/**
 * What a logged error may show. Errors are written field by field from an allow-list, never as a
 * whole object: a database driver's error carries the statement's parameters (a failing INSERT
 * into users holds a bcrypt hash), the row (`detail`: "Failing row contains (...)") and the SQL,
 * and other libraries attach requests, headers or configs. Redacting by key name cannot keep up
 * with that, so nothing outside the list below is ever written.
 */
export interface SerializedError {
  type: string;
  message: string;
  stack?: string;
  /** `code` of other errors (ECONNREFUSED, ...). */
  errorCode?: string | number;
  /** Database errors: the SQLSTATE (23505, 57014, ...). */
  sqlState?: string;
  /** Database errors: the names of what failed, never values. */
  constraint?: string;
  table?: string;
  column?: string;
  cause?: SerializedError;
}

/** Fields of a PostgreSQL (pg, PGlite) error that name schema objects, not data. */
const DATABASE_NAME_FIELDS = ['constraint', 'table', 'column'] as const;
const MAX_CAUSE_DEPTH = 3;

interface ErrorLike {
  name?: unknown;
  message?: unknown;
  stack?: unknown;
  code?: unknown;
  cause?: unknown;
  driverError?: unknown;
  severity?: unknown;
  routine?: unknown;
  parameters?: unknown;
  constructor?: { name?: unknown };
}

/** True for TypeORM's QueryFailedError and the PostgreSQL drivers' own errors. */
function isDatabaseError(error: ErrorLike): boolean {
  return (
    error.name === 'QueryFailedError' ||
    'driverError' in error ||
    'parameters' in error ||
    (typeof error.code === 'string' && /^[0-9A-Z]{5}$/.test(error.code) && ('severity' in error || 'routine' in error))
  );
}

/**
 * A database error's message with every quoted value masked, except the quoted names the error
 * itself reports (constraint, table, column): PostgreSQL quotes input in some messages
 * (`invalid input syntax for type uuid: "…"`, `value "…" is out of range`).
 */
function scrubDatabaseMessage(message: string, names: ReadonlySet<string>): string {
  return message.replace(/"((?:[^"]|"")*)"/g, (quoted, inner: string) => (names.has(inner) ? quoted : '"[value]"'));
}

/** The pino serializer for `err` and `error` fields (and safeErrorMessage for text). */
export function serializeError(error: unknown, depth = 0): SerializedError | unknown {
  if (error === null || typeof error !== 'object') return error;
  const e = error as ErrorLike;
  const type = typeof e.name === 'string' ? e.name : typeof e.constructor?.name === 'string' ? e.constructor.name : 'Error';
  const message = typeof e.message === 'string' ? e.message : '';
  const stack = typeof e.stack === 'string' ? e.stack : undefined;
  const out: SerializedError = { type, message };

  if (isDatabaseError(e)) {
    const source = (e.driverError && typeof e.driverError === 'object' ? e.driverError : e) as Record<string, unknown>;
    const names = new Set<string>();
    for (const field of DATABASE_NAME_FIELDS) {
      const value = source[field] ?? (e as Record<string, unknown>)[field];
      if (typeof value === 'string') {
        out[field] = value;
        names.add(value);
      }
    }
    const code = source.code ?? e.code;
    if (typeof code === 'string') out.sqlState = code;
    out.message = scrubDatabaseMessage(message, names);
    // The stack's first line repeats the message: keep only the frames.
    if (stack) out.stack = [`${type}: ${out.message}`, ...stack.split('\n').filter((line) => /^\s+at /.test(line))].join('\n');
    return out;
  }

  if (stack) out.stack = stack;
  if (typeof e.code === 'string' || typeof e.code === 'number') out.errorCode = e.code;
  if (e.cause !== undefined && depth < MAX_CAUSE_DEPTH) {
    const cause = serializeError(e.cause, depth + 1);
    if (cause && typeof cause === 'object') out.cause = cause as SerializedError;
  }
  return out;
}

/**
 * An error's message, fit for a log line: database errors scrubbed as in serializeError, and a
 * bare string (drivers sometimes report one) with every quoted part masked.
 */
export function safeErrorMessage(error: unknown): string {
  if (typeof error === 'string') return scrubDatabaseMessage(error, new Set());
  const serialized = serializeError(error);
  if (serialized && typeof serialized === 'object') return (serialized as SerializedError).message;
  return String(error);
}
