import { Writable } from 'node:stream';
import pino from 'pino';
import { QueryFailedError } from 'typeorm';
import { safeErrorMessage, serializeError } from './error-serializer';

const HASH = '$2b$12$abcdefghijklmnopqrstuuYjzGxMYd3Jb5y0Q9Zl8yT1v6kVJbC2e';

/** What the pg driver attaches to a failed INSERT into users (a not-null violation, say). */
function pgError(): Error {
  return Object.assign(new Error('null value in column "name" of relation "users" violates not-null constraint'), {
    name: 'error',
    code: '23502',
    severity: 'ERROR',
    routine: 'ExecConstraints',
    table: 'users',
    column: 'name',
    detail: `Failing row contains (usr_1, victim@example.com, null, ${HASH}).`,
    where: 'SQL statement',
  });
}

function capture(): { log: pino.Logger; text: () => string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { log: pino({ serializers: { err: serializeError, error: serializeError } }, sink), text: () => lines.join('') };
}

describe('serializeError', () => {
  it('logs a failed query by name and SQLSTATE, never its parameters, row or SQL', () => {
    const failed = new QueryFailedError(
      'INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3)',
      ['usr_1', 'victim@example.com', HASH],
      pgError(),
    );
    const { log, text } = capture();
    log.error({ err: failed, requestId: 'r1' }, 'Unhandled error');
    log.warn({ error: failed }, 'again under another key');
    const line = JSON.parse(text().split('\n')[0]);
    expect(line.err).toEqual({
      type: 'QueryFailedError',
      message: 'null value in column "name" of relation "users" violates not-null constraint',
      sqlState: '23502',
      table: 'users',
      column: 'name',
      stack: expect.stringMatching(/^QueryFailedError: null value in column "name"/),
    });
    expect(text()).not.toContain('$2b$');
    expect(text()).not.toContain('victim@example.com');
    expect(text()).not.toContain('INSERT INTO');
  });

  it('masks quoted values in database messages, keeping the names the error reports', () => {
    const typed = Object.assign(new Error('invalid input syntax for type uuid: "s3cret-value"'), { code: '22P02', severity: 'ERROR' });
    expect(safeErrorMessage(typed)).toBe('invalid input syntax for type uuid: "[value]"');
    const unique = Object.assign(new Error('duplicate key value violates unique constraint "users_email_key"'), {
      code: '23505',
      severity: 'ERROR',
      constraint: 'users_email_key',
      detail: 'Key (email)=(victim@example.com) already exists.',
    });
    expect(serializeError(unique)).toMatchObject({
      message: 'duplicate key value violates unique constraint "users_email_key"',
      constraint: 'users_email_key',
    });
    expect(JSON.stringify(serializeError(unique))).not.toContain('victim@example.com');
    expect(safeErrorMessage('value "123456789" is out of range for type integer')).toBe('value "[value]" is out of range for type integer');
  });

  it('writes other errors from an allow-list: no attached objects, causes serialised the same way', () => {
    const inner = new QueryFailedError('SELECT 1', [HASH], pgError());
    const outer = Object.assign(new Error('outer failed', { cause: inner }), {
      code: 'E_OUTER',
      config: { headers: { authorization: 'Bearer x' } },
    });
    const serialized = serializeError(outer) as Record<string, unknown>;
    expect(Object.keys(serialized).sort()).toEqual(['cause', 'errorCode', 'message', 'stack', 'type']);
    expect(serialized.cause).toMatchObject({ type: 'QueryFailedError', sqlState: '23502' });
    expect(JSON.stringify(serialized)).not.toMatch(/Bearer x|\$2b\$/);
    expect(serializeError('plain')).toBe('plain');
  });
});
