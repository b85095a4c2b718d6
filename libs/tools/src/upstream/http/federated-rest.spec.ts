import { AppException } from '@app/core';
import { FederationError } from '../upstream-features.service';
import { asRest, pageOf, promptArgumentProblems, withoutHopMeta } from './federated-rest';
import { restErrorOf } from './federation-rest-errors';

function rendered(error: unknown): { status: number; code: string; details: unknown[]; headers: Record<string, string> } {
  expect(error).toBeInstanceOf(AppException);
  const app = error as AppException;
  return { status: app.getStatus(), code: app.code, details: app.details, headers: app.headers };
}

describe('restErrorOf: the MCP path’s errors in the contract’s Error body', () => {
  it.each<[string, FederationError, number, string]>([
    ['an unknown prompt', new FederationError(-32602, 'Unknown prompt: x'), 404, 'NOT_FOUND'],
    ['an unknown resource', new FederationError(-32002, 'Resource not found', { uri: 'a://b' }), 404, 'NOT_FOUND'],
    [
      'a held definition',
      new FederationError(-32000, 'not approved', { error: 'DEFINITION_NOT_APPROVED' }),
      403,
      'DEFINITION_NOT_APPROVED',
    ],
    [
      'an upstream that is down',
      new FederationError(-32000, 'Upstream u is unavailable', { error: 'UPSTREAM_UNAVAILABLE' }),
      503,
      'UPSTREAM_UNAVAILABLE',
    ],
    ['a timeout', new FederationError(-32000, 'Upstream u: timed out', { error: 'TIMEOUT' }), 504, 'UPSTREAM_TIMEOUT'],
    [
      'another failure of ours',
      new FederationError(-32000, 'Upstream u: unexpected error', { error: 'UPSTREAM_ERROR' }),
      502,
      'UPSTREAM_ERROR',
    ],
    ["the upstream's invalid params", new FederationError(-32602, 'city: Required', undefined, 'upstream'), 400, 'VALIDATION_ERROR'],
    ["the upstream's not found", new FederationError(-32002, 'no such note', undefined, 'upstream'), 404, 'NOT_FOUND'],
    ["the upstream's internal error", new FederationError(-32603, 'boom', undefined, 'upstream'), 502, 'UPSTREAM_ERROR'],
  ])('%s', (_, error, status, code) => {
    const out = rendered(restErrorOf(error, 'arguments'));
    expect({ status: out.status, code: out.code }).toEqual({ status, code });
  });

  it("names the field and keeps the upstream's code and words in details", () => {
    expect(rendered(restErrorOf(new FederationError(-32603, 'boom\n  at x', undefined, 'upstream'), 'uri')).details).toEqual([
      { field: 'uri', code: 'JSONRPC_-32603', message: 'boom at x' },
    ]);
    expect(rendered(restErrorOf(new FederationError(-32002, 'Resource not found', { uri: 'u' }), 'uri')).details).toEqual([
      expect.objectContaining({ field: 'uri', code: 'RESOURCE_NOT_FOUND' }),
    ]);
  });

  it('passes anything else (rate limits, scope refusals) on unchanged', () => {
    const limited = new AppException('RATE_LIMIT_EXCEEDED', 'slow down', 429);
    expect(restErrorOf(limited, 'uri')).toBe(limited);
  });
});

describe('promptArgumentProblems', () => {
  const prompt = { arguments: [{ name: 'city', required: true }, { name: 'state' }] };

  it('accepts the required arguments with or without the optional ones', () => {
    expect(promptArgumentProblems(prompt, { city: 'Bergen' })).toEqual([]);
    expect(promptArgumentProblems(prompt, { city: 'Bergen', state: 'Vestland' })).toEqual([]);
    expect(promptArgumentProblems({}, undefined)).toEqual([]);
  });

  it('names each missing, unknown or non-string argument', () => {
    expect(promptArgumentProblems(prompt, { state: 7, country: 'NO' })).toEqual([
      expect.objectContaining({ field: 'arguments.state', code: 'isString' }),
      expect.objectContaining({ field: 'arguments.country', code: 'unknownArgument' }),
      expect.objectContaining({ field: 'arguments.city', code: 'isDefined' }),
    ]);
  });
});

describe('pageOf and withoutHopMeta', () => {
  it('cuts a sorted listing like GET /tools', () => {
    expect(pageOf(['a', 'b', 'c', 'd', 'e'], { page: 2, limit: 2 })).toEqual({
      items: ['c', 'd'],
      pagination: { page: 2, limit: 2, total: 5, pages: 3 },
    });
    expect(pageOf(['a'], { page: 3, limit: 2 }).items).toEqual([]);
  });

  it("drops only the upstream hop's serverInfo from _meta", () => {
    const hop = 'io.modelcontextprotocol/serverInfo';
    expect(withoutHopMeta({ messages: [], _meta: { [hop]: { name: 'u' } } })).toEqual({ messages: [] });
    expect(withoutHopMeta({ messages: [], _meta: { [hop]: { name: 'u' }, trace: 1 } })).toEqual({ messages: [], _meta: { trace: 1 } });
    expect(withoutHopMeta<{ messages: string[]; _meta?: Record<string, unknown> }>({ messages: ['m'] })).toEqual({ messages: ['m'] });
  });
});

describe('asRest', () => {
  it('answers the result, and an error in the Error body', async () => {
    await expect(asRest('uri', async () => ({ contents: [] }))).resolves.toEqual({ contents: [] });
    await expect(asRest('uri', () => Promise.reject(new FederationError(-32002, 'Resource not found')))).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('refuses an InputRequiredResult, which only an MCP agent can answer, with 409 INPUT_REQUIRED', async () => {
    const asking = { resultType: 'input_required', inputRequests: { q: { method: 'elicitation/create', params: {} } }, requestState: 's' };
    const refused = await asRest('arguments', async () => asking).catch((error: unknown) => error);
    expect(rendered(refused)).toMatchObject({ status: 409, code: 'INPUT_REQUIRED' });
  });
});
