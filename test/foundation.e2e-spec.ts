import { DATABASE_KINDS, http, startTestApp, TestApp } from './support/test-app';
import { ProbeModule } from './support/probe.module';

const ERROR_KEYS = ['details', 'error', 'message', 'requestId', 'timestamp', 'traceId'];

describe.each(DATABASE_KINDS)('foundation over HTTP (%s)', (kind) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp(kind, {
      extraModules: [ProbeModule],
      env: { BODY_LIMIT: '2048', CORS_ORIGINS: 'https://console.example.com' },
    });
  });
  afterAll(() => t?.close());

  const expectErrorBody = (res: { status: number; headers: Headers; body: any }, status: number, code: string) => {
    expect(res.status).toBe(status);
    expect(Object.keys(res.body).sort()).toEqual(ERROR_KEYS);
    expect(res.body.error).toBe(code);
    expect(res.body.requestId).toBe(res.headers.get('x-request-id'));
    expect(new Date(res.body.timestamp).toString()).not.toBe('Invalid Date');
  };

  describe('health', () => {
    it('answers liveness with the contract shape', async () => {
      const res = await http(t.baseUrl, 'GET', '/api/v1/health');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'healthy', timestamp: expect.any(String), version: 'test' });
    });

    it('is ready once migrations have run and the database answers', async () => {
      const res = await http(t.baseUrl, 'GET', '/api/v1/ready');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ready: true, timestamp: expect.any(String) });
    });

    it("reports each component's status to anyone (the figures are for admins)", async () => {
      const res = await http(t.baseUrl, 'GET', '/api/v1/health/detailed');
      expect(res.status).toBe(200);
      expect(['healthy', 'degraded']).toContain(res.body.status);
      expect(res.body.components.database).toEqual({ status: 'healthy' });
      for (const name of ['memory', 'disk', 'eventLoop']) {
        expect(['healthy', 'degraded']).toContain(res.body.components[name].status);
      }
    });

    it('exposes Prometheus metrics with a request histogram labelled by route template', async () => {
      await http(t.baseUrl, 'GET', '/api/v1/health');
      await http(t.baseUrl, 'GET', '/api/v1/no/such/thing');
      const res = await http(t.baseUrl, 'GET', '/api/v1/metrics');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(res.text).toMatch(/^process_cpu_user_seconds_total /m);
      expect(res.text).toMatch(/http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/health",status_code="200"\} \d+/);
      expect(res.text).toMatch(/http_request_duration_seconds_count\{method="GET",route="unmatched",status_code="404"\} \d+/);
      expect(res.text).not.toContain('no/such/thing');
    });
  });

  describe('errors', () => {
    it('gives an unknown route the Error body with 404', async () => {
      const res = await http(t.baseUrl, 'GET', '/api/v1/does-not-exist');
      expectErrorBody(res, 404, 'NOT_FOUND');
    });

    it('gives a known path with the wrong method 405 and Allow', async () => {
      const res = await http(t.baseUrl, 'DELETE', '/api/v1/health');
      expectErrorBody(res, 405, 'METHOD_NOT_ALLOWED');
      expect(res.headers.get('allow')).toContain('GET');
    });

    it('gives malformed JSON 400', async () => {
      const res = await http(t.baseUrl, 'POST', '/api/v1/probe/echo', {
        raw: '{"email": "a@b.co",',
        headers: { 'content-type': 'application/json' },
      });
      expectErrorBody(res, 400, 'MALFORMED_JSON');
    });

    it('gives an oversized body 413 (BODY_LIMIT)', async () => {
      const res = await http(t.baseUrl, 'POST', '/api/v1/probe/echo', {
        body: { email: 'a@b.co', name: 'x'.repeat(4096) },
      });
      expectErrorBody(res, 413, 'PAYLOAD_TOO_LARGE');
    });

    it('gives a body that is not JSON 415', async () => {
      const res = await http(t.baseUrl, 'POST', '/api/v1/probe/echo', {
        raw: 'email=a@b.co',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expectErrorBody(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    });

    it('names every invalid and every unknown field in details', async () => {
      const res = await http(t.baseUrl, 'POST', '/api/v1/probe/echo', {
        body: { email: 'not-an-email', name: 'ok!', inner: { count: 99 }, roles: ['admin'] },
      });
      expectErrorBody(res, 400, 'VALIDATION_ERROR');
      const fields = res.body.details.map((d: { field: string }) => d.field).sort();
      expect(fields).toEqual(['email', 'inner.count', 'roles']);
      for (const detail of res.body.details) {
        expect(detail).toEqual({ field: expect.any(String), message: expect.any(String), code: expect.any(String) });
      }
    });

    it('accepts a valid body', async () => {
      const res = await http(t.baseUrl, 'POST', '/api/v1/probe/echo', { body: { email: 'a@b.co', name: 'Ada' } });
      expect(res.status).toBe(201);
      expect(res.body).toEqual({ email: 'a@b.co', name: 'Ada' });
    });

    it('answers an unexpected failure with 500 and no internals', async () => {
      const res = await http(t.baseUrl, 'GET', '/api/v1/probe/boom');
      expectErrorBody(res, 500, 'INTERNAL_ERROR');
      expect(res.text).not.toMatch(/hunter2|secret\.ts|internal detail|at /);
    });
  });

  describe('request context', () => {
    it('keeps a well-formed X-Request-Id and echoes it in header and body', async () => {
      const res = await http(t.baseUrl, 'GET', '/api/v1/nope', { headers: { 'x-request-id': 'client-abc.123' } });
      expect(res.headers.get('x-request-id')).toBe('client-abc.123');
      expect(res.body.requestId).toBe('client-abc.123');
    });

    it('replaces a malformed X-Request-Id with its own', async () => {
      const res = await http(t.baseUrl, 'GET', '/api/v1/nope', { headers: { 'x-request-id': 'bad id\u00e9<script>' } });
      expect(res.headers.get('x-request-id')).toMatch(/^req_[A-Za-z0-9_-]+$/);
      expect(res.body.requestId).toBe(res.headers.get('x-request-id'));
    });

    it('takes the trace id from a W3C traceparent', async () => {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const res = await http(t.baseUrl, 'GET', '/api/v1/nope', {
        headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      });
      expect(res.body.traceId).toBe(traceId);
    });
  });

  describe('safety defaults', () => {
    it('sends security headers', async () => {
      const res = await http(t.baseUrl, 'GET', '/api/v1/health');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    });

    it('allows only configured CORS origins', async () => {
      const allowed = await http(t.baseUrl, 'OPTIONS', '/api/v1/health', {
        headers: { origin: 'https://console.example.com', 'access-control-request-method': 'GET' },
      });
      expect(allowed.headers.get('access-control-allow-origin')).toBe('https://console.example.com');
      const denied = await http(t.baseUrl, 'OPTIONS', '/api/v1/health', {
        headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'GET' },
      });
      expect(denied.headers.get('access-control-allow-origin')).toBeNull();
    });
  });
});
