import { DATABASE_KINDS, http, HttpResult, startTestApp, TestApp } from '../support/test-app';
import { expectError } from '../support/error-body';
import { rawHttp } from '../support/raw-http';
import { ADMIN_EMAIL, ADMIN_PASSWORD, IDENTITY_ENV, IdentityClient } from '../auth/identity.helpers';

/**
 * Input that once produced 500s or bodies outside the contract: NUL and lone surrogates reaching
 * PostgreSQL or the validator, JSON deep enough to overflow the validation pipe, pagination values
 * that broke SQL, and the refusals Fastify and Node write before Nest's filter runs.
 */
describe.each(DATABASE_KINDS)('malformed input is a 4xx with the Error body (%s)', (kind) => {
  let t: TestApp;
  let admin: string;
  const json = { 'content-type': 'application/json' };
  const raw = (method: string, path: string, text: string, token?: string) =>
    http(t.baseUrl, method, path, { raw: text, headers: json, token });
  const fields = (details: Array<{ field?: string; code?: string }>) => details.map((d) => `${d.field}:${d.code}`).sort();

  beforeAll(async () => {
    t = await startTestApp(kind, { env: IDENTITY_ENV });
    admin = await new IdentityClient(t.baseUrl).adminToken();
  });
  afterAll(() => t?.close());

  it('refuses NUL in stored body strings, keys included, naming each field', async () => {
    const register = await raw(
      'POST',
      '/api/v1/auth/register',
      '{"email":"nul@example.com","password":"Vq7$kLm2pXz9Ab","name":"a\\u0000b"}',
    );
    expect(fields(expectError(register, 400, 'VALIDATION_ERROR'))).toEqual(['name:nulCharacter']);

    const context = await raw('POST', '/api/v1/contexts', '{"name":"ok","metadata":{"k\\u0000":"v","list":["x","\\u0000"]}}', admin);
    expect(fields(expectError(context, 400, 'VALIDATION_ERROR'))).toEqual([
      'metadata.k\uFFFD:nulCharacter',
      'metadata.list.1:nulCharacter',
    ]);
    const after = await http(t.baseUrl, 'GET', '/api/v1/contexts', { token: admin });
    expect(after.body.pagination.total).toBe(0);
  });

  it('refuses NUL in path ids and query filters before any guard or query sees them', async () => {
    expect(
      fields(expectError(await http(t.baseUrl, 'GET', '/api/v1/contexts/ctx_%00', { token: admin }), 400, 'VALIDATION_ERROR')),
    ).toEqual(['id:nulCharacter']);
    expect(
      fields(expectError(await http(t.baseUrl, 'DELETE', '/api/v1/auth/api-keys/key%00', { token: admin }), 400, 'VALIDATION_ERROR')),
    ).toEqual(['id:nulCharacter']);
    expect(
      fields(expectError(await http(t.baseUrl, 'GET', '/api/v1/admin/users?search=a%00', { token: admin }), 400, 'VALIDATION_ERROR')),
    ).toEqual(['search:nulCharacter']);
  });

  it('refuses a lone surrogate in an email instead of throwing in the validator', async () => {
    for (const path of ['/api/v1/auth/login', '/api/v1/auth/register']) {
      const res = await raw('POST', path, '{"email":"a\\ud800@example.com","password":"Vq7$kLm2pXz9Ab","name":"x"}');
      expect(fields(expectError(res, 400, 'VALIDATION_ERROR'))).toEqual(['email:loneSurrogate']);
    }
  });

  it('refuses JSON nested 1,500 deep at parse time, on the unauthenticated login route too', async () => {
    const deep = '['.repeat(1500) + ']'.repeat(1500);
    const login = await raw('POST', '/api/v1/auth/login', `{"email":${deep},"password":"x"}`);
    expect(fields(expectError(login, 400, 'VALIDATION_ERROR'))).toEqual(['email:maxDepth']);
    const context = await raw('POST', '/api/v1/contexts', `{"name":"deep","settings":{"a":${deep}}}`, admin);
    expect(fields(expectError(context, 400, 'VALIDATION_ERROR'))).toEqual(['settings:maxDepth']);
    // The server is whole afterwards: a normal login still works.
    expect((await http(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { email: ADMIN_EMAIL, password: ADMIN_PASSWORD } })).status).toBe(
      200,
    );
  });

  it('refuses "__proto__" in a body with the field named', async () => {
    const res = await raw('POST', '/api/v1/contexts', '{"name":"p","metadata":{"__proto__":{"admin":true}}}', admin);
    expect(fields(expectError(res, 400, 'VALIDATION_ERROR'))).toEqual(['metadata.__proto__:forbiddenKey']);
  });

  it('refuses pagination values that used to throw or reach SQL', async () => {
    for (const path of ['/api/v1/admin/users', '/api/v1/contexts', '/api/v1/sessions']) {
      expect(fields(expectError(await http(t.baseUrl, 'GET', `${path}?offset=`, { token: admin }), 400, 'VALIDATION_ERROR'))).toEqual([
        'offset:unknownProperty',
      ]);
      const huge = await http(t.baseUrl, 'GET', `${path}?page=99999999999999999999`, { token: admin });
      expect(fields(expectError(huge, 400, 'VALIDATION_ERROR'))).toEqual(['page:max']);
    }
    expect((await http(t.baseUrl, 'GET', '/api/v1/admin/users?page=1000000', { token: admin })).status).toBe(200);
  });

  describe('answers written before Nest runs', () => {
    const send = (method: string, path: string, headers: Record<string, string> = {}): Promise<HttpResult> =>
      http(t.baseUrl, method, path, { headers });

    it('a request head over 16 KB is 431', async () => {
      expectError(await send('GET', `/api/v1/contexts?q=${'a'.repeat(20_000)}`), 431, 'HEADERS_TOO_LARGE');
    });

    it('a path parameter over the router limit is 414', async () => {
      expectError(await send('GET', `/api/v1/contexts/${'a'.repeat(200)}`), 414, 'URI_TOO_LONG');
    });

    it('bad percent-encoding is 400', async () => {
      expectError(await send('GET', '/api/v1/contexts/%E0%A4%A'), 400, 'BAD_REQUEST');
    });

    it('a method Node does not know is 400, one it knows but we do not route is 405', async () => {
      expectError(await send('FOO', '/api/v1/health'), 400, 'BAD_REQUEST');
      expectError(await send('PROPFIND', '/api/v1/health'), 405, 'METHOD_NOT_ALLOWED');
    });

    it('CONNECT, which Node never hands to Fastify, is 405 rather than a dropped socket', async () => {
      const res = await rawHttp(t.baseUrl, 'CONNECT 127.0.0.1:5432 HTTP/1.1\r\nHost: 127.0.0.1:5432\r\n\r\n');
      expectError({ ...res, body: res.body as any }, 405, 'METHOD_NOT_ALLOWED');
    });

    it('a body that is not JSON is 415, text/plain included; an empty JSON body is 400', async () => {
      expectError(
        await http(t.baseUrl, 'POST', '/api/v1/auth/login', { raw: 'x', headers: { 'content-type': 'text/plain' } }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
      expectError(await raw('POST', '/api/v1/auth/login', ''), 400, 'MALFORMED_JSON');
    });
  });
});
