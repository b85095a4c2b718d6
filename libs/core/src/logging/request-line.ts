import pino, { Logger } from 'pino';

/** The one line written per request (the server's request log): its fields, in this order. */
export interface RequestLine {
  reqId: string;
  traceId: string;
  userId?: string;
  sessionId?: string;
  method: string;
  route: string | null;
  path: string;
  statusCode: number;
  durationMs: number;
  ip?: string;
}

export const REQUEST_LINE_MESSAGE = 'request completed';

const {
  chindingsSym,
  endSym,
  formattersSym,
  hooksSym,
  lsCacheSym,
  messageKeySym,
  mixinSym,
  needsMetadataGsym,
  nestedKeySym,
  serializersSym,
  streamSym,
  stringifiersSym,
  timeSym,
  wildcardFirstSym,
} = pino.symbols;

/** Missing from pino's typings of `pino.symbols`, present at run time. */
const msgPrefixSym = (pino.symbols as unknown as Record<string, symbol>).msgPrefixSym;

type Internals = Record<symbol, unknown>;

/**
 * Writes request lines at info through `logger`: the same line pino writes for
 * `logger.info({ ...line }, 'request completed')`, byte for byte (checked by request-line.spec),
 * built from the fixed fields directly instead of by pino's walk over an object (a tenth of a
 * cached read's CPU went into that line). Falls back to pino itself whenever the logger does
 * anything per line beyond level, time and bindings: a mixin (tracing's correlation), a log
 * formatter, serializers or redaction of these fields, a nested key or message prefix, a stream
 * hook, or a stream that wants per-line metadata; and for a line with a string that JSON would
 * not write as it is (see `quotable`), so that escaping is always pino's own.
 */
export function requestLineWriter(logger: Logger): (line: RequestLine) => void {
  const internals = logger as unknown as Internals;
  const formatters = internals[formattersSym] as { log?: unknown } | undefined;
  const serializers = internals[serializersSym] as Record<string, unknown> | undefined;
  const hooks = internals[hooksSym] as { streamWrite?: unknown } | undefined;
  const stringifiers = (internals[stringifiersSym] ?? {}) as Record<string | symbol, unknown>;
  const stream = internals[streamSym] as { write(line: string): unknown } & Internals;
  const touches = (map: Record<string, unknown>) => Object.keys(map).some((key) => Object.hasOwn(FIELD_NAMES, key));
  const plain =
    !internals[mixinSym] &&
    !formatters?.log &&
    !hooks?.streamWrite &&
    stream[needsMetadataGsym] !== true &&
    internals[messageKeySym] === 'msg' &&
    !internals[nestedKeySym] &&
    !internals[msgPrefixSym] &&
    // Redaction: a wildcard first segment applies to every key; a named one to its key.
    !stringifiers[wildcardFirstSym] &&
    !touches(stringifiers) &&
    !touches(serializers ?? {});
  if (!plain) return (line) => logger.info(asObject(line), REQUEST_LINE_MESSAGE);

  const info = logger.levels.values.info;
  const head = (internals[lsCacheSym] as Record<number, string>)[info];
  const ownTime = internals[timeSym] as () => string;
  const time = ownTime === pino.stdTimeFunctions.isoTime ? isoTimeOncePerMs() : ownTime;
  const tail = `,"msg":${JSON.stringify(REQUEST_LINE_MESSAGE)}${internals[endSym] as string}`;
  return (line) => {
    if (!logger.isLevelEnabled('info')) return;
    if (!quotable(line)) return logger.info(asObject(line), REQUEST_LINE_MESSAGE);
    // Every string is written quoted, as it is (see quotable): no JSON.stringify per field.
    stream.write(
      head +
        time() +
        (internals[chindingsSym] as string) +
        `,"reqId":"${line.reqId}","traceId":"${line.traceId}"` +
        (line.userId === undefined ? '' : `,"userId":"${line.userId}"`) +
        (line.sessionId === undefined ? '' : `,"sessionId":"${line.sessionId}"`) +
        `,"method":"${line.method}","route":${line.route === null ? 'null' : `"${line.route}"`},"path":"${line.path}"` +
        `,"statusCode":${finite(line.statusCode)},"durationMs":${finite(line.durationMs)}` +
        (line.ip === undefined ? '' : `,"ip":"${line.ip}"`) +
        tail,
    );
  };
}

/**
 * Characters a JSON string may need escaped: `"`, `\\`, U+0000 to U+001F, and surrogates (JSON.stringify
 * escapes lone ones; pino leaves them in short strings and escapes them in long ones).
 */
const ESCAPABLE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * Whether each of the line's strings is, as JSON, just itself in quotes (as any writer escapes
 * it): true for ids, methods, route templates, paths and addresses, bar the odd path. The
 * per-field JSON.stringify this saves cost more than the rest of the line.
 */
function quotable(line: RequestLine): boolean {
  return (
    !ESCAPABLE.test(line.reqId) &&
    !ESCAPABLE.test(line.traceId) &&
    (line.userId === undefined || !ESCAPABLE.test(line.userId)) &&
    (line.sessionId === undefined || !ESCAPABLE.test(line.sessionId)) &&
    !ESCAPABLE.test(line.method) &&
    (line.route === null || !ESCAPABLE.test(line.route)) &&
    !ESCAPABLE.test(line.path) &&
    (line.ip === undefined || !ESCAPABLE.test(line.ip))
  );
}

/**
 * pino's isoTime, formatted once per millisecond: requests finishing in the same millisecond
 * (several at a time under load) share the string instead of each building a Date and its ISO form.
 */
function isoTimeOncePerMs(): () => string {
  let lastMs = Number.NaN;
  let last = '';
  return () => {
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      last = `,"time":"${new Date(now).toISOString()}"`;
    }
    return last;
  };
}

const FIELD_NAMES: Record<keyof RequestLine | 'msg', true> = {
  reqId: true,
  traceId: true,
  userId: true,
  sessionId: true,
  method: true,
  route: true,
  path: true,
  statusCode: true,
  durationMs: true,
  ip: true,
  msg: true,
};

/** As pino writes a number: non-finite ones as null. */
function finite(value: number): string {
  return Number.isFinite(value) ? String(value) : 'null';
}

function asObject(line: RequestLine): Record<string, unknown> {
  // Named one by one: pino serialises an object built by spreading several times slower.
  return {
    reqId: line.reqId,
    traceId: line.traceId,
    userId: line.userId,
    sessionId: line.sessionId,
    method: line.method,
    route: line.route,
    path: line.path,
    statusCode: line.statusCode,
    durationMs: line.durationMs,
    ip: line.ip,
  };
}
