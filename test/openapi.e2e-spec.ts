import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { http, startTestApp, TestApp } from './support/test-app';

type Doc = {
  paths: Record<string, Record<string, any>>;
  components: { schemas: Record<string, any>; securitySchemes?: Record<string, any> };
  security?: unknown[];
};

/** The contract: the team's shared copy when it is beside the repository, else the vendored one. */
function loadContract(): Doc {
  const shared = join(__dirname, '..', '..', 'shared', 'api', 'openapi.yaml');
  const vendored = join(__dirname, 'contract', 'openapi.yaml');
  return load(readFileSync(existsSync(shared) ? shared : vendored, 'utf8')) as Doc;
}

const METHODS = ['get', 'post', 'put', 'delete', 'patch'];

function resolve(doc: Doc, schema: any): any {
  if (schema?.$ref) return resolve(doc, doc.components.schemas[schema.$ref.split('/').pop()]);
  if (schema?.allOf) return Object.assign({}, ...schema.allOf.map((s: any) => resolve(doc, s)));
  return schema ?? {};
}

function propertyNames(doc: Doc, schema: any): string[] {
  return Object.keys(resolve(doc, schema).properties ?? {}).sort();
}

describe('OpenAPI document and Swagger UI', () => {
  let t: TestApp;
  let generated: Doc;
  const contract = loadContract();

  beforeAll(async () => {
    t = await startTestApp('postgres');
    generated = (await http(t.baseUrl, 'GET', '/api/docs-json')).body;
  });
  afterAll(() => t?.close());

  it('serves Swagger UI at /api/docs', async () => {
    const res = await http(t.baseUrl, 'GET', '/api/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(res.text).toContain('swagger-ui');
    const init = await http(t.baseUrl, 'GET', '/api/docs/swagger-ui-init.js');
    expect(init.status).toBe(200);
    expect(init.text).toContain('persistAuthorization');
    expect(init.text).toContain('BearerAuth');
  });

  it('declares the BearerAuth scheme, applied by default', () => {
    expect(generated.components.securitySchemes?.BearerAuth).toEqual({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
    expect(generated.security).toEqual([{ BearerAuth: [] }]);
  });

  it('names the shared schemas as the contract does', () => {
    const error = generated.components.schemas.Error;
    expect(error).toBeDefined();
    expect([...error.required].sort()).toEqual([...contract.components.schemas.Error.required].sort());
    expect(propertyNames(generated, error)).toEqual(propertyNames(contract, contract.components.schemas.Error));
    expect(propertyNames(generated, generated.components.schemas.Pagination)).toEqual(
      propertyNames(contract, contract.components.schemas.Pagination),
    );
    for (const name of ['User', 'Tool', 'Context', 'Session']) {
      const ours = generated.components.schemas[name];
      if (!ours) continue; // arrives with its feature
      expect({ name, props: propertyNames(generated, ours) }).toEqual({
        name,
        props: propertyNames(contract, contract.components.schemas[name]),
      });
    }
  });

  it('matches the contract for every route that exists: parameters, bodies, statuses, security', () => {
    const mismatches: string[] = [];
    let compared = 0;
    for (const [path, item] of Object.entries(contract.paths)) {
      for (const method of METHODS.filter((m) => item[m])) {
        const promised = item[method];
        const ours = generated.paths[path]?.[method];
        if (!ours) continue;
        compared++;
        const where = `${method.toUpperCase()} ${path}`;
        const params = (list: any[] = []) => list.map((p) => `${p.in}:${p.name}`).sort();
        for (const p of params(promised.parameters)) {
          if (!params(ours.parameters).includes(p)) mismatches.push(`${where}: missing parameter ${p}`);
        }
        for (const status of Object.keys(promised.responses)) {
          if (!ours.responses?.[status]) mismatches.push(`${where}: missing response ${status}`);
        }
        if (promised.requestBody) {
          const body = ours.requestBody?.content?.['application/json']?.schema;
          if (!body) mismatches.push(`${where}: missing request body`);
          else {
            const want = propertyNames(contract, promised.requestBody.content['application/json'].schema);
            const have = propertyNames(generated, body);
            for (const prop of want) if (!have.includes(prop)) mismatches.push(`${where}: body lacks ${prop}`);
          }
        }
        const promisedPublic = Array.isArray(promised.security) && promised.security.length === 0;
        const oursPublic = Array.isArray(ours.security) && ours.security.length === 0;
        if (promisedPublic !== oursPublic) mismatches.push(`${where}: security ${oursPublic ? 'public' : 'authenticated'}`);
      }
    }
    expect(mismatches).toEqual([]);
    expect(compared).toBeGreaterThanOrEqual(4);
  });
});
