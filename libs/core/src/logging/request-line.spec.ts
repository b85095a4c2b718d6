import { Writable } from 'node:stream';
import pino, { Logger, LoggerOptions } from 'pino';
import { REDACT_PATHS } from './logger';
import { REQUEST_LINE_MESSAGE, RequestLine, requestLineWriter } from './request-line';

/** A logger like the server's (level, base, time, redaction, serializers) writing into an array. */
function capture(options: LoggerOptions = {}): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  const logger = pino(
    {
      level: 'info',
      base: { service: 'secure-mcp-server', version: '9.9.9' },
      // A fixed clock: both lines of a pair must be comparable byte for byte.
      timestamp: () => ',"time":"2026-12-03T08:00:00.000Z"',
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      serializers: { err: (value: unknown) => value },
      messageKey: 'msg',
      ...options,
    },
    sink,
  );
  return { logger, lines };
}

const FULL: RequestLine = {
  reqId: 'req_ML_O-6Y1mFuDNoI_',
  traceId: '0123456789abcdef0123456789abcdef',
  userId: 'usr_1',
  sessionId: 'ses_1',
  method: 'GET',
  route: '/api/v1/tools',
  path: '/api/v1/tools',
  statusCode: 200,
  durationMs: 1.23,
  ip: '127.0.0.1',
};

/** [what, fields, whether the writer builds the line itself (else it is pino's, for a string JSON escapes)]. */
const CASES: Array<[string, RequestLine, boolean]> = [
  ['an authenticated request', FULL, true],
  ['an anonymous one (no user, no session)', { ...FULL, userId: undefined, sessionId: undefined }, true],
  ['an unmatched route and a gone socket (no ip)', { ...FULL, route: null, ip: undefined, statusCode: 404 }, true],
  [
    'a long id and characters JSON leaves as they are',
    { ...FULL, reqId: 'x'.repeat(128), path: '/a b/\u00e9\u2028/ü\u007f', method: 'PROPFIND' },
    true,
  ],
  ['strings that need escaping', { ...FULL, path: '/a"b\\c\u0001d\u00e9\u2028/ü', method: 'PROPFIND', reqId: 'x'.repeat(128) }, false],
  ['a quote in the address', { ...FULL, ip: '"127.0.0.1"' }, false],
  ['a control character in the user id', { ...FULL, userId: 'u\tv' }, false],
  ['a backslash in the route', { ...FULL, route: '/a\\b' }, false],
  ['a paired surrogate in the path', { ...FULL, path: '/\ud83d\ude00' }, false],
  ['lone surrogates, short and long', { ...FULL, path: '/\ud800x/\udfff', sessionId: `${'s'.repeat(120)}\ud800` }, false],
  ['a whole-number duration', { ...FULL, durationMs: 3, statusCode: 500 }, true],
];

describe('requestLineWriter', () => {
  it.each(CASES)('writes the line pino writes for the same fields: %s', (_what, line, direct) => {
    const { logger, lines } = capture();
    const child = logger.child({}, { redact: [] });
    // The line is built directly, not by pino's walk (what this writer is for), unless pino has to escape a string.
    const info = jest.spyOn(child, 'info');
    requestLineWriter(child)(line);
    expect(info).toHaveBeenCalledTimes(direct ? 0 : 1);
    info.mockRestore();
    child.info({ ...line }, REQUEST_LINE_MESSAGE);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(lines[1]);
    const parsed = JSON.parse(lines[0]) as Record<string, unknown>;
    expect(parsed.level).toBe(30);
    expect(parsed.service).toBe('secure-mcp-server');
    expect(parsed.msg).toBe(REQUEST_LINE_MESSAGE);
    // As UTF-8 carries them (a lone surrogate becomes U+FFFD on the way).
    const utf8 = (value: string | null | undefined) => (typeof value === 'string' ? Buffer.from(value).toString() : value);
    expect(parsed.path).toBe(utf8(line.path));
    expect(parsed.route).toBe(utf8(line.route));
    expect(parsed.userId).toBe(utf8(line.userId));
  });

  it("writes pino's isoTime as pino does, within a millisecond and across milliseconds", () => {
    const { logger, lines } = capture({ timestamp: pino.stdTimeFunctions.isoTime });
    const child = logger.child({}, { redact: [] });
    const write = requestLineWriter(child);
    const now = jest.spyOn(Date, 'now');
    try {
      for (const ms of [Date.UTC(2026, 11, 3, 8, 0, 0, 1), Date.UTC(2026, 11, 3, 8, 0, 0, 1), Date.UTC(2026, 11, 3, 8, 0, 0, 2)]) {
        now.mockReturnValue(ms);
        write(FULL);
        child.info({ ...FULL }, REQUEST_LINE_MESSAGE);
      }
    } finally {
      now.mockRestore();
    }
    expect(lines).toHaveLength(6);
    for (let i = 0; i < 6; i += 2) expect(lines[i]).toBe(lines[i + 1]);
    expect((JSON.parse(lines[4]) as Record<string, unknown>).time).toBe('2026-12-03T08:00:00.002Z');
  });

  it('keeps the child bindings, also ones set after it was made', () => {
    const { logger, lines } = capture();
    const child = logger.child({ replica: 'a' }, { redact: [] });
    const write = requestLineWriter(child);
    child.setBindings({ zone: 'z1' });
    write(FULL);
    child.info({ ...FULL }, REQUEST_LINE_MESSAGE);
    expect(lines[0]).toBe(lines[1]);
    expect((JSON.parse(lines[0]) as Record<string, unknown>).zone).toBe('z1');
  });

  it('writes nothing when info is off, and writes again once it is on', () => {
    const { logger, lines } = capture({ level: 'warn' });
    const write = requestLineWriter(logger.child({}, { redact: [] }));
    write(FULL);
    expect(lines).toHaveLength(0);
    logger.level = 'info';
    const child = logger.child({}, { redact: [] });
    requestLineWriter(child)(FULL);
    expect(lines).toHaveLength(1);
  });

  it('leaves the line to pino when the logger adds fields per line (a mixin) or redacts every key', () => {
    const mixed = capture({ mixin: () => ({ traceId: 'from-mixin', spanId: 'span-1' }) });
    const child = mixed.logger.child({}, { redact: [] });
    const info = jest.spyOn(child, 'info');
    requestLineWriter(child)(FULL);
    expect(info).toHaveBeenCalledTimes(1);
    const fromMixin = JSON.parse(mixed.lines[0]) as Record<string, unknown>;
    expect(fromMixin.spanId).toBe('span-1');
    // The line's own fields win over the mixin's, as pino merges them.
    expect(fromMixin.traceId).toBe(FULL.traceId);

    // The root logger (wildcard redaction paths) is not plain: pino writes the line, redaction included.
    const redacted = capture();
    requestLineWriter(redacted.logger)({ ...FULL });
    redacted.logger.info({ ...FULL }, REQUEST_LINE_MESSAGE);
    expect(redacted.lines[0]).toBe(redacted.lines[1]);
  });
});
