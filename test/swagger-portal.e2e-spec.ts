import Ajv, { ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { ErrorCode } from '@app/core';
import { errorBodyProblem } from './support/error-body';
import { http, startTestApp, TestApp } from './support/test-app';

type Operation = {
  summary?: string;
  tags?: string[];
  requestBody?: { content?: Record<string, { example?: any }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: { $ref?: string }; example?: any }> }>;
};
type Doc = {
  info: { description: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, any> };
};

/** The code an error example must show per status, unless its description names a more specific catalogue code. */
const CODE_FOR_STATUS: Record<string, string> = {
  '400': 'VALIDATION_ERROR',
  '401': 'UNAUTHORIZED',
  '403': 'FORBIDDEN',
  '404': 'NOT_FOUND',
  '409': 'CONFLICT',
  '429': 'RATE_LIMIT_EXCEEDED',
  '503': 'SERVICE_UNAVAILABLE',
};
const TRACE_ID = /^[0-9a-f]{32}$/;

function errorResponses(doc: Doc): Array<{ where: string; status: string; description: string; example: any }> {
  const found = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        const media = response.content?.['application/json'];
        if (media?.schema?.$ref !== '#/components/schemas/Error') continue;
        found.push({ where: `${method.toUpperCase()} ${path}`, status, description: response.description ?? '', example: media.example });
      }
    }
  }
  return found;
}

describe('Swagger UI as an API portal', () => {
  let t: TestApp;
  let doc: Doc;
  let validateError: ValidateFunction;

  beforeAll(async () => {
    t = await startTestApp('postgres');
    doc = (await http(t.baseUrl, 'GET', '/api/docs-json')).body;
    const ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema({ components: doc.components }, 'doc');
    validateError = ajv.compile({ $ref: 'doc#/components/schemas/Error' });
  });
  afterAll(() => t?.close());

  it('lists the error-code catalogue as the enum of Error.error, the core codes included', () => {
    const codes: string[] = doc.components.schemas.Error.properties.error.enum;
    expect(Array.isArray(codes)).toBe(true);
    expect(Object.values(ErrorCode).filter((code) => !codes.includes(code))).toEqual([]);
    for (const libCode of [
      'MFA_INVALID_CODE',
      'ACCOUNT_LOCKED',
      'TOOL_NOT_IN_CONTEXT',
      'CONTEXT_ARCHIVED',
      'QUEUE_FULL',
      'AUDIT_CHAIN_BROKEN',
    ]) {
      expect({ libCode, listed: codes.includes(libCode) }).toEqual({ libCode, listed: true });
    }
  });

  it('gives every error response an example of its own status, valid against the Error schema', () => {
    const responses = errorResponses(doc);
    expect(responses.length).toBeGreaterThan(20);
    const codes: string[] = doc.components.schemas.Error.properties.error.enum;
    const wrong: string[] = [];
    for (const { where, status, description, example } of responses) {
      const at = `${where} ${status}`;
      if (!example) {
        wrong.push(`${at}: no example`);
        continue;
      }
      if (!validateError(example)) wrong.push(`${at}: ${JSON.stringify(validateError.errors)}`);
      if (!TRACE_ID.test(example.traceId)) wrong.push(`${at}: traceId ${example.traceId}`);
      const named = /^([A-Z][A-Z_]+)\b/.exec(description)?.[1];
      const expected = named && codes.includes(named) ? named : CODE_FOR_STATUS[status];
      if (expected && example.error !== expected) wrong.push(`${at}: ${example.error}, expected ${expected}`);
    }
    expect(wrong).toEqual([]);
    // The 400 example shows what a validation failure carries: the field at fault.
    const badRequest = responses.find((r) => r.where === 'POST /auth/register' && r.status === '400')!.example;
    expect(badRequest.details[0]).toEqual(expect.objectContaining({ field: expect.any(String), message: expect.any(String) }));
  });

  it('documents the codes the server really answers with', async () => {
    const examples = new Map(errorResponses(doc).map((r) => [`${r.where} ${r.status}`, r.example]));
    const unauthenticated = await http(t.baseUrl, 'GET', '/api/v1/auth/me');
    const invalid = await http(t.baseUrl, 'POST', '/api/v1/auth/register', { body: { email: 'not-an-email', password: 'x', name: 'X' } });
    for (const [key, res] of [
      ['GET /auth/me 401', unauthenticated],
      ['POST /auth/register 400', invalid],
    ] as const) {
      expect({ key, problem: errorBodyProblem(res), status: res.status, error: res.body.error }).toEqual({
        key,
        problem: null,
        status: Number(key.split(' ').pop()),
        error: examples.get(key).error,
      });
      expect(res.body.traceId).toMatch(TRACE_ID);
    }
    expect(invalid.body.details.map((d: { field: string }) => d.field)).toContain('email');
  });

  it('has register and login examples the API accepts, and the token they give calls a tool route', async () => {
    const register = doc.paths['/auth/register'].post.requestBody!.content!['application/json'].example;
    const login = doc.paths['/auth/login'].post.requestBody!.content!['application/json'].example;
    expect(Object.keys(login).sort()).toEqual(['email', 'password']);

    const created = await http(t.baseUrl, 'POST', '/api/v1/auth/register', { body: register });
    expect({ status: created.status, email: created.body.email }).toEqual({ status: 201, email: register.email });
    const signedIn = await http(t.baseUrl, 'POST', '/api/v1/auth/login', { body: login });
    expect({ status: signedIn.status, tokenType: signedIn.body.tokenType }).toEqual({ status: 200, tokenType: 'Bearer' });
    const tools = await http(t.baseUrl, 'GET', '/api/v1/tools', { token: signedIn.body.accessToken });
    expect(tools.status).toBe(200);

    // The guide's duplicate registration: the 409 example's code is the one the server sends.
    const again = await http(t.baseUrl, 'POST', '/api/v1/auth/register', { body: register });
    expect({ status: again.status, error: again.body.error }).toEqual({
      status: 409,
      error: doc.paths['/auth/register'].post.responses!['409'].content!['application/json'].example.error,
    });
  });

  it('names schemas without the Dto suffix, and every $ref still resolves', () => {
    expect(Object.keys(doc.components.schemas).filter((name) => name.endsWith('Dto'))).toEqual([]);
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]);
    expect(refs.length).toBeGreaterThan(20);
    expect([...new Set(refs)].filter((name) => !doc.components.schemas[name])).toEqual([]);
  });

  it('summarises every health route', () => {
    const health = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([, op]) => op.tags?.includes('Health'))
        .map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, summary: Boolean(op.summary) })),
    );
    expect(health.length).toBeGreaterThanOrEqual(4);
    expect(health.filter((h) => !h.summary)).toEqual([]);
  });

  it('describes the MCP endpoints, and they answer where the description says', async () => {
    const description = doc.info.description;
    for (const path of ['/api/v1/mcp', '/api/v1/contexts/{id}/mcp', '/api/v1/mcp/ws', '/.well-known/oauth-protected-resource/api/v1/mcp']) {
      expect({ path, described: description.includes(`\`${path}\``) }).toEqual({ path, described: true });
    }
    const metadata = await http(t.baseUrl, 'GET', '/.well-known/oauth-protected-resource/api/v1/mcp');
    expect(metadata.status).toBe(200);
    expect(typeof metadata.body.resource).toBe('string');
    const refused = await http(t.baseUrl, 'POST', '/api/v1/mcp', { body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toContain('/.well-known/oauth-protected-resource');
  });

  it('serves the portal under its own title, without the stock top bar', async () => {
    const page = await http(t.baseUrl, 'GET', '/api/docs');
    expect(/<title>([^<]*)<\/title>/.exec(page.text)?.[1]).toBe('Secure MCP Server — API portal');
    expect(page.text).toContain('.swagger-ui .topbar { display: none }');
  });
});
