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
});
