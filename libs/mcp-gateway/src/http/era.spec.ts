import { isLegacyRequest, PROTOCOL_VERSION_META_KEY } from '@modelcontextprotocol/server';
import { carriesModernClaim } from './era';

const CLAIM = { [PROTOCOL_VERSION_META_KEY]: '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 't', version: '1' } };

function post(headers: Record<string, string> = {}): Request {
  return new Request('http://127.0.0.1/api/v1/mcp', { method: 'POST', headers: { 'content-type': 'application/json', ...headers } });
}

/** Bodies of every shape the classifier distinguishes, with and without the claim. */
const BODIES: Array<[string, unknown]> = [
  ['modern tools/call', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x', _meta: CLAIM } }],
  ['modern notification', { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1, _meta: CLAIM } }],
  [
    'claim with a non-string version',
    { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { [PROTOCOL_VERSION_META_KEY]: 7 } } },
  ],
  [
    'claim with an unsupported version',
    { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { [PROTOCOL_VERSION_META_KEY]: '2099-01-01' } } },
  ],
  ['claim without jsonrpc', { id: 1, method: 'tools/list', params: { _meta: CLAIM } }],
  ['claim, method not a string', { jsonrpc: '2.0', id: 1, method: 5, params: { _meta: CLAIM } }],
  ['initialize with a claim', { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', _meta: CLAIM } }],
  ['initialize', { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {} } }],
  ['2025 tools/call', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } }],
  ['2025 notification', { jsonrpc: '2.0', method: 'notifications/initialized' }],
  ['posted result with a claim', { jsonrpc: '2.0', id: 1, result: {}, method: 'x', params: { _meta: CLAIM } }],
  ['posted error', { jsonrpc: '2.0', id: 1, error: { code: 1, message: 'x' }, params: { _meta: CLAIM } }],
  ['batch with a claim', [{ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: CLAIM } }]],
  ['_meta not an object', { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: [PROTOCOL_VERSION_META_KEY] } }],
  ['params an array', { jsonrpc: '2.0', id: 1, method: 'tools/list', params: [CLAIM] }],
  ['null', null],
  ['a string', 'tools/list'],
];

describe('carriesModernClaim', () => {
  it.each(BODIES)('never says modern where the SDK says legacy: %s', async (_name, body) => {
    const variants: Array<Record<string, string>> = [
      {},
      { 'mcp-protocol-version': '2026-07-28' },
      { 'mcp-protocol-version': '2025-06-18' },
    ];
    for (const headers of variants) {
      const legacy = await isLegacyRequest(post(headers), body);
      if (carriesModernClaim(body)) expect(legacy).toBe(false);
    }
  });

  it('says modern for the messages a 2026-07-28 client sends', () => {
    expect(BODIES.filter(([, body]) => carriesModernClaim(body)).map(([name]) => name)).toEqual([
      'modern tools/call',
      'modern notification',
      'claim with a non-string version',
      'claim with an unsupported version',
      'claim without jsonrpc',
      'claim, method not a string',
    ]);
  });
});
