import Ajv, { ValidateFunction } from 'ajv';
import { Agent, request as httpRequest } from 'node:http';
import addFormats from 'ajv-formats';
import { DATABASE_KINDS, DatabaseKind, http, startTestApp, TestApp } from '../support/test-app';
import { errorBodyProblem } from '../support/error-body';
import { rawHttp } from '../support/raw-http';
import { ADMIN_EMAIL, ADMIN_PASSWORD, IDENTITY_ENV, PASSWORD } from '../auth/identity.helpers';

/**
 * A fuzzer generated from the OpenAPI document the server serves: every operation gets wrong
 * types, missing and extra fields, huge and unicode-edge strings, deep JSON, bad query values,
 * bad path parameters and malformed URLs, as an anonymous caller, a signed-in user and an admin.
 * It fails on any 5xx, any error answer that is not the contract's Error body, any stack trace,
 * SQL or server path in a body, and any request left unanswered.
 *
 * Deterministic: FUZZ_SEED (default below) picks the cases; FUZZ_CASES (per operation and
 * identity) bounds the run, FUZZ_TIMEOUT_MS the test. A failure prints the seed and each failing request.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);
const CASES_PER_OPERATION: Record<DatabaseKind, number> = {
  postgres: Number(process.env.FUZZ_CASES ?? 16),
  // The embedded database gets a smaller sample of the same generator (the storage paths differ, the parsing does not).
  embedded: Math.ceil(Number(process.env.FUZZ_CASES ?? 16) / 4),
};
const CONCURRENCY = 4;
const ANSWER_WITHIN_MS = 15_000;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Schema = Record<string, any>;
type Identity = 'anonymous' | 'user' | 'admin';

interface Operation {
  method: string;
  path: string;
  parameters: Array<{ name: string; in: string; required?: boolean; schema?: Schema }>;
  body?: Schema;
}

interface Case {
  label: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

interface Failure {
  identity: Identity;
  case: string;
  request: string;
  status: number;
  problem: string;
  body: string;
}

/** mulberry32: small, seedable, good enough to pick cases. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sample<T>(items: T[], count: number, next: () => number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]];
  }
  return copy.slice(0, count);
}

const DEEP = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

/** Strings that broke or could break something: storage (NUL), the validator (surrogates), display (bidi), size. */
const EDGE_STRINGS: Array<[string, string]> = [
  ['NUL', 'a\u0000b'],
  ['only NUL', '\u0000'],
  ['lone high surrogate', 'x\uD800y'],
  ['lone low surrogate', '\uDC00'],
  ['bidi override', '\u202Eevil\u202C.txt'],
  ['zero-width joiners', 'a\u200B\u200D\uFEFFb'],
  ['emoji', '😀👨‍👩‍👧'],
  ['combining marks', 'e\u0301'.repeat(500)],
  ['noncharacter', '\uFFFF\uFFFE'],
  ['control characters', '\u0001\u001b[31m\r\n'],
  ['empty', ''],
  ['whitespace', '   '],
  ['huge', 'x'.repeat(200_000)],
  ['sql-ish', "' OR 1=1 --"],
  ['format string', '%s%n%x'],
  ['json in a string', '{"$ne":null}'],
];

const WRONG_TYPES: Array<[string, Json | { raw: string }]> = [
  ['number', 12345],
  ['negative', -1],
  ['float', 1.5],
  ['huge number', { raw: '99999999999999999999999' }],
  ['exponent', { raw: '1e309' }],
  ['boolean', true],
  ['null', null],
  ['array', ['a', 1]],
  ['object', { nested: 'x' }],
  ['string', 'not-the-type'],
  ['deep array', { raw: DEEP(1500) }],
];

const QUERY_VALUES: Array<[string, string]> = [
  ['empty', ''],
  ['letters', 'abc'],
  ['negative', '-1'],
  ['zero', '0'],
  ['float', '1.5'],
  ['huge integer', '99999999999999999999'],
  ['NaN', 'NaN'],
  ['Infinity', 'Infinity'],
  ['exponent', '1e309'],
  ['NUL', 'a%00b'],
  ['invalid UTF-8 (surrogate)', '%ED%A0%80'],
  ['bad percent-encoding', '%E0%A4%A'],
  ['lone percent', '%'],
  ['bidi', '%E2%80%AEx'],
  ['long', 'a'.repeat(4000)],
  ['brackets', '[]'],
  ['object syntax', '{"$gt":""}'],
];

const PATH_VALUES: Array<[string, string]> = [
  ['NUL', '%00'],
  ['embedded NUL', 'id%00x'],
  ['invalid UTF-8 (surrogate)', '%ED%A0%80'],
  ['bad percent-encoding', '%E0%A4%A'],
  ['lone percent', '%'],
  ['over the param limit', 'a'.repeat(150)],
  ['traversal', '..%2F..%2Fetc%2Fpasswd'],
  ['encoded dots', '%2e%2e'],
  ['emoji', '%F0%9F%98%80'],
  ['bidi', '%E2%80%AE'],
  ['space', '%20'],
  ['quote', "'"],
  ['number', '99999999999999999999'],
  ['negative', '-1'],
  ['encoded percent', '%25'],
  ['unicode escape text', '%u0000'],
];

/** Not allowed in any body: a stack frame, SQL or a driver's error text, a path on the server. */
function leakIn(text: string, serverPaths: string[], errorBody: boolean): string | null {
  if (/\bat [\w$.<>]+ \(.*:\d+:\d+\)|\n\s+at /.test(text)) return 'stack trace';
  if (
    /QueryFailedError|syntax error at or near|invalid input syntax|violates .* constraint|\bSELECT\b[\s\S]{1,200}\bFROM\b|\bINSERT INTO\b|\bUPDATE\b[\s\S]{1,100}\bSET\b/i.test(
      text,
    )
  ) {
    return 'SQL or driver text';
  }
  // 2xx bodies echo the caller's own input; only error bodies are held to "no path at all".
  if (errorBody && (serverPaths.some((path) => text.includes(path)) || /node_modules|\.(?:ts|js):\d+/.test(text))) return 'server path';
  return null;
}

function resolve(schema: Schema | undefined, document: Schema): Schema {
  let current = schema ?? {};
  for (let hops = 0; current.$ref && hops < 10; hops++) {
    current = current.$ref
      .split('/')
      .slice(1)
      .reduce((node: Schema, key: string) => node[key], document);
  }
  if (Array.isArray(current.allOf)) {
    return current.allOf.reduce((merged: Schema, part: Schema) => ({ ...merged, ...resolve(part, document) }), {
      ...current,
      allOf: undefined,
    });
  }
  return current;
}

/** A plausible, mostly valid value for a schema, so each mutation changes one thing. */
function valueFor(schema: Schema, name: string, document: Schema, ids: Record<string, string>, depth = 0): Json {
  const s = resolve(schema, document);
  if (s.example !== undefined && depth > 0) return s.example as Json;
  if (Array.isArray(s.enum)) return s.enum[0] as Json;
  switch (s.type) {
    case 'integer':
    case 'number':
      return typeof s.minimum === 'number' ? s.minimum : 1;
    case 'boolean':
      return true;
    case 'array':
      return depth > 3 ? [] : [valueFor(s.items ?? {}, name, document, ids, depth + 1)];
    case 'object': {
      if (depth > 3 || !s.properties) return {};
      const value: Record<string, Json> = {};
      for (const [key, child] of Object.entries<Schema>(s.properties)) {
        if (s.required?.includes(key) || depth === 0) value[key] = valueFor(child, key, document, ids, depth + 1);
      }
      return value;
    }
    default:
      if (s.format === 'email') return 'fuzzed.person@example.com';
      if (s.format === 'date-time') return '2031-01-01T00:00:00Z';
      if (/password/i.test(name)) return PASSWORD;
      if (/phone/i.test(name)) return '+14155550123';
      if (/code/i.test(name)) return '123456';
      if (/contextId/.test(name)) return ids.context;
      return 'fuzz';
  }
}

function jsonText(value: Json | { raw: string }): string {
  return value !== null && typeof value === 'object' && 'raw' in value && typeof value.raw === 'string' ? value.raw : JSON.stringify(value);
}

/** The body with one property replaced by raw JSON text (for values JSON.stringify cannot write). */
function withProperty(base: Record<string, Json>, key: string, replacement: Json | { raw: string }): string {
  const marker = '__fuzz_marker__';
  return JSON.stringify({ ...base, [key]: marker }).replace(`"${marker}"`, jsonText(replacement));
}

function casesFor(op: Operation, document: Schema, ids: Record<string, string>): Case[] {
  const pathParams = op.parameters.filter((p) => p.in === 'path');
  const queryParams = op.parameters.filter((p) => p.in === 'query');
  const validPath = pathParams.reduce((path, p) => path.replace(`{${p.name}}`, encodeURIComponent(idFor(op.path, p.name, ids))), op.path);
  const url = (path: string, query = '') => `/api/v1${path}${query ? `?${query}` : ''}`;
  const json = { 'content-type': 'application/json' };
  const cases: Case[] = [];
  const add = (label: string, overrides: Partial<Case>) =>
    cases.push({ label, method: op.method, url: url(validPath), headers: op.body ? json : {}, ...overrides });

  const bodySchema = op.body ? resolve(op.body, document) : undefined;
  const base = (bodySchema ? valueFor(bodySchema, '', document, ids) : undefined) as Record<string, Json> | undefined;
  const baseText = base ? JSON.stringify(base) : undefined;
  add('baseline', { body: baseText });

  for (const param of pathParams) {
    for (const [label, value] of PATH_VALUES) {
      add(`path ${param.name}: ${label}`, {
        url: url(op.path.replace(`{${param.name}}`, value).replace(/\{(\w+)\}/g, (_m, name) => idFor(op.path, name, ids))),
        body: baseText,
      });
    }
  }
  for (const param of queryParams) {
    for (const [label, value] of QUERY_VALUES) add(`query ${param.name}: ${label}`, { url: url(validPath, `${param.name}=${value}`) });
    add(`query ${param.name}: repeated`, { url: url(validPath, `${param.name}=1&${param.name}=2`) });
  }
  add('query: unknown parameter', { url: url(validPath, 'unexpected=1'), body: baseText });
  add('query: NUL key', { url: url(validPath, '%00=1'), body: baseText });
  add('query: only separators', { url: url(validPath, '&&=&'), body: baseText });

  if (base && bodySchema) {
    const properties = Object.keys(bodySchema.properties ?? {});
    for (const key of bodySchema.required ?? []) {
      const rest = { ...base };
      delete rest[key];
      add(`body: missing ${key}`, { body: JSON.stringify(rest) });
    }
    for (const key of properties) {
      for (const [label, value] of WRONG_TYPES) add(`body ${key}: ${label}`, { body: withProperty(base, key, value) });
      for (const [label, value] of EDGE_STRINGS) add(`body ${key}: ${label} string`, { body: withProperty(base, key, value) });
      add(`body ${key}: NUL in a nested key`, { body: withProperty(base, key, { 'k\u0000': 'v' }) });
      add(`body ${key}: array of edge strings`, {
        body: withProperty(
          base,
          key,
          EDGE_STRINGS.slice(0, 6).map(([, s]) => s),
        ),
      });
    }
    add('body: extra field', { body: JSON.stringify({ ...base, unexpectedField: 'x' }) });
    add('body: __proto__', { body: baseText!.replace(/^\{/, '{"__proto__":{"isAdmin":true},') });
    add('body: constructor.prototype', { body: baseText!.replace(/^\{/, '{"constructor":{"prototype":{"isAdmin":true}},') });
    add('body: deep JSON', { body: `{"a":${DEEP(1500)}}` });
    add('body: deep objects', { body: '{"a":'.repeat(3000) + '1' + '}'.repeat(3000) });
    add('body: duplicate keys', { body: baseText!.replace(/^\{/, '{"a":1,"a":2,') });
  }
  // Every operation, with or without a documented body, gets bodies it did not ask for.
  for (const [label, text] of [
    ['array', '[]'],
    ['null', 'null'],
    ['number', '42'],
    ['string', '"text"'],
    ['truncated', '{"a":'],
    ['garbage', '\u0000\u0001'],
    ['empty', ''],
    ['trailing garbage', '{}x'],
    ['deep', DEEP(5000)],
  ] as const) {
    add(`raw body: ${label}`, { body: text, headers: json });
  }
  for (const contentType of [
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/json; charset=utf-16',
    'application/xml',
    '*/*',
    ';;;',
  ]) {
    add(`content-type ${contentType}`, { body: baseText ?? '{}', headers: { 'content-type': contentType } });
  }
  add('JSON content-type, no body', { body: undefined, headers: json });
  add('oversized body', { body: JSON.stringify({ blob: 'x'.repeat(1_100_000) }), headers: json });
  return cases;
}

/** Real ids where the route expects one, so mutations reach past the 404. */
function idFor(path: string, name: string, ids: Record<string, string>): string {
  if (name === 'executionId') return ids.execution;
  if (path.startsWith('/admin/users')) return ids.victim;
  if (path.startsWith('/admin/tools') || path.startsWith('/tools')) return ids.tool;
  if (path.startsWith('/contexts')) return ids.context;
  if (path.startsWith('/sessions')) return ids.session;
  if (path.startsWith('/auth/api-keys')) return ids.apiKey;
  return 'fuzz';
}

/** Malformed URLs that belong to no single operation. */
const URL_CASES: Array<[string, string, string]> = [
  ['GET', '/api/v1/%', 'lone percent'],
  ['GET', '/api/v1//contexts', 'empty segment'],
  ['GET', '/api/v1/contexts/%ED%A0%80', 'surrogate bytes'],
  ['GET', `/api/v1/contexts?${'q='.repeat(9000)}`, 'head over 16 KB'],
  ['GET', `/api/v1/${'a'.repeat(8000)}`, 'long path'],
  ['GET', '/api/v1/contexts?%=1', 'bad percent in a query key'],
  ['GET', '/api/v1/..%2f..%2fpackage.json', 'traversal'],
  ['GET', '/%00', 'NUL at the root'],
  ['FOO', '/api/v1/health', 'unknown method'],
  ['PROPFIND', '/api/v1/contexts', 'WebDAV method'],
  ['TRACE', '/api/v1/health', 'TRACE'],
  ['CONNECT', '127.0.0.1:5432', 'CONNECT'],
  ['DELETE', '/api/v1/health', 'wrong method'],
  ['GET', '/api/docs-json/%00', 'NUL under the docs'],
];

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

/**
 * node:http rather than fetch: fetch refuses bodies on GET and methods like TRACE, and normalises
 * paths; the fuzzer needs the bytes it wrote to reach the server.
 */
function send(
  baseUrl: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: Headers; text: string }> {
  const url = new URL(baseUrl);
  // node:http hands a CONNECT answer to a 'connect' listener as a tunnel: read it off a plain socket.
  if (method === 'CONNECT') return rawHttp(baseUrl, `CONNECT ${path} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
  return new Promise((resolvePromise, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        agent,
        timeout: ANSWER_WITHIN_MS,
        headers: body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(res.headers)) if (typeof value === 'string') responseHeaders.set(name, value);
          resolvePromise({ status: res.statusCode ?? 0, headers: responseHeaders, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${ANSWER_WITHIN_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function runPool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let index = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (index < items.length) await work(items[index++]);
    }),
  );
}

describe.each(DATABASE_KINDS)('OpenAPI fuzzer (%s)', (kind) => {
  let t: TestApp;
  let document: Schema;
  let validateError: ValidateFunction;
  const ids: Record<string, string> = {};
  const tokens: Partial<Record<Identity, () => Promise<string>>> = {};

  async function loginAs(email: string, password: string): Promise<string> {
    const res = await http(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { email, password } });
    if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${res.text}`);
    return res.body.accessToken;
  }

  beforeAll(async () => {
    t = await startTestApp(kind, { env: IDENTITY_ENV });
    const served = await http(t.baseUrl, 'GET', '/api/docs-json');
    document = served.body;
    const ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema({ components: document.components }, 'doc');
    validateError = ajv.compile({ $ref: 'doc#/components/schemas/Error' });

    for (const email of ['fuzz.user@example.com', 'fuzz.victim@example.com']) {
      await http(t.baseUrl, 'POST', '/api/v1/auth/register', { body: { email, password: PASSWORD, name: 'Fuzz' } });
    }
    const admin = await loginAs(ADMIN_EMAIL, ADMIN_PASSWORD);
    const victim = await loginAs('fuzz.victim@example.com', PASSWORD);
    const me = await http(t.baseUrl, 'GET', '/api/v1/auth/me', { token: victim });
    ids.victim = me.body.id;
    const sessions = await http(t.baseUrl, 'GET', '/api/v1/sessions', { token: victim });
    ids.session = sessions.body.sessions[0].id;
    const tools = await http(t.baseUrl, 'GET', '/api/v1/tools?limit=100', { token: admin });
    ids.tool = tools.body.tools.find((tool: { id: string }) => tool.id === 'tool_echo')?.id ?? tools.body.tools[0].id;
    const user = await loginAs('fuzz.user@example.com', PASSWORD);
    const context = await http(t.baseUrl, 'POST', '/api/v1/contexts', { token: user, body: { name: 'fuzz', tools: [ids.tool] } });
    ids.context = context.body.id;
    const key = await http(t.baseUrl, 'POST', '/api/v1/auth/api-keys', { token: user, body: { name: 'fuzz' } });
    ids.apiKey = key.body.id;
    const execution = await http(t.baseUrl, 'POST', `/api/v1/tools/${ids.tool}/execute`, {
      token: user,
      body: { parameters: { message: 'x' } },
    });
    ids.execution = execution.body.executionId ?? execution.body.id ?? 'exec_fuzz';

    // A fresh login per operation: a fuzzed logout, MFA enrolment or terminate must not blind the rest of the run.
    tokens.user = () => loginAs('fuzz.user@example.com', PASSWORD);
    tokens.admin = () => loginAs(ADMIN_EMAIL, ADMIN_PASSWORD);
  });
  afterAll(async () => {
    agent.destroy();
    await t?.close();
  });

  it(
    'answers every fuzzed request to every served operation with a non-5xx, contract-shaped, leak-free response',
    async () => {
      const operations: Operation[] = [];
      for (const [path, item] of Object.entries<Schema>(document.paths)) {
        for (const [method, op] of Object.entries<Schema>(item)) {
          if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
          operations.push({
            method: method.toUpperCase(),
            path,
            parameters: op.parameters ?? [],
            body: op.requestBody?.content?.['application/json']?.schema,
          });
        }
      }
      expect(operations.length).toBeGreaterThan(20);

      const serverPaths = [process.cwd(), t.dataDir];
      const next = random(SEED);
      const failures: Failure[] = [];
      let sent = 0;

      const check = async (identity: Identity, token: string | undefined, c: Case) => {
        const headers = { ...c.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) };
        const request = `${c.method} ${c.url.length > 120 ? `${c.url.slice(0, 120)}…` : c.url}`;
        let status = 0;
        let text = '';
        let problem: string | null = null;
        try {
          const res = await send(t.baseUrl, c.method, c.url, headers, c.body);
          status = res.status;
          text = res.text;
          const isJson = (res.headers.get('content-type') ?? '').includes('json');
          const body = isJson && text ? JSON.parse(text) : text;
          if (status >= 500) problem = `status ${status}`;
          else if (status >= 400) {
            problem =
              errorBodyProblem({ status, headers: res.headers, body }) ??
              (validateError(body) ? null : `Error schema: ${ajvMessage(validateError)}`);
          }
          problem ??= leakIn(text, serverPaths, status >= 400);
        } catch (error) {
          problem = `no answer: ${(error as Error).message}`;
        }
        sent++;
        if (problem) failures.push({ identity, case: c.label, request, status, problem, body: text.slice(0, 300) });
      };

      for (const op of operations) {
        const started = Date.now();
        const all = casesFor(op, document, ids);
        for (const identity of ['anonymous', 'user', 'admin'] as Identity[]) {
          const token = identity === 'anonymous' ? undefined : await tokens[identity]!();
          // The baseline always runs; the rest is a seeded sample.
          const chosen = [all[0], ...sample(all.slice(1), CASES_PER_OPERATION[kind] - 1, next)];
          await runPool(chosen, CONCURRENCY, (c) => check(identity, token, c));
        }
        if (process.env.FUZZ_TRACE) process.stderr.write(`${op.method} ${op.path}: ${Date.now() - started} ms, ${sent} sent\n`);
      }
      const admin = await tokens.admin!();
      await runPool(URL_CASES, CONCURRENCY, ([method, url, label]) => check('admin', admin, { label, method, url, headers: {} }));

      if (process.env.FUZZ_TRACE) process.stderr.write(`FUZZ_SEED=${SEED}: ${sent} requests, ${failures.length} failed\n`);
      // The server is still whole after the run.
      expect((await http(t.baseUrl, 'GET', '/api/v1/health')).status).toBe(200);
      expect(sent).toBeGreaterThan(operations.length * 3);
      if (failures.length > 0) {
        throw new Error(
          `FUZZ_SEED=${SEED}: ${failures.length} of ${sent} requests failed:\n${JSON.stringify(failures.slice(0, 40), null, 1)}`,
        );
      }
    },
    Number(process.env.FUZZ_TIMEOUT_MS ?? 170_000),
  );
});

function ajvMessage(validate: ValidateFunction): string {
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
}
