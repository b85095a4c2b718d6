import { Writable } from 'node:stream';
import pino from 'pino';
import { REDACT_PATHS } from './logger';

describe('log redaction', () => {
  it('censors credentials wherever they appear in a logged object', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = pino({ redact: { paths: REDACT_PATHS, censor: '[REDACTED]' } }, sink);
    log.info(
      {
        req: { headers: { authorization: 'Bearer eyJ.secret', cookie: 'sid=1', 'x-api-key': 'smk_1' } },
        body: { password: 'Hunter2Hunter2!', mfaCode: '123456', user: { refreshToken: 'rt_abc' } },
      },
      'request',
    );
    const line = lines.join('');
    for (const secret of ['eyJ.secret', 'sid=1', 'smk_1', 'Hunter2Hunter2!', '123456', 'rt_abc']) {
      expect(line).not.toContain(secret);
    }
    expect(line).toContain('[REDACTED]');
  });

  it('censors the MFA code by its exact path and keeps other fields named code', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = pino({ redact: { paths: REDACT_PATHS, censor: '[REDACTED]' } }, sink);
    log.info({ req: { body: { type: 'totp', code: '123456' } }, error: { code: 'ECONNREFUSED' }, upstream: { code: 503 } }, 'request');
    log.info({ body: { code: '654321', currentCode: '111111' } }, 'body');
    const [first, second] = lines.map((line) => JSON.parse(line) as Record<string, Record<string, Record<string, unknown>>>);
    expect(first.req.body).toEqual({ type: 'totp', code: '[REDACTED]' });
    expect(first.error.code).toBe('ECONNREFUSED');
    expect(first.upstream.code).toBe(503);
    expect(second.body).toEqual({ code: '[REDACTED]', currentCode: '[REDACTED]' });
  });
});
