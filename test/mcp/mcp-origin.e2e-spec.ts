import { request as httpRequest } from 'node:http';
import { startTestApp, TestApp } from '../support/test-app';
import { Caller, mcpEnv, signUp, ticketFor, upgradeStatus } from './mcp-test-kit';

/**
 * The MCP endpoints compare a browser's Origin as a whole origin (scheme, host and port): the
 * endpoint's own, or one configured in MCP_ALLOWED_ORIGINS. A matching hostname alone (another
 * local web server on another port) is a cross-site caller, over HTTP and over WebSocket.
 */
describe('MCP Origin check: scheme, host and port', () => {
  let t: TestApp;
  let user: Caller;
  let port: number;

  beforeAll(async () => {
    t = await startTestApp('postgres', { env: mcpEnv({ MCP_ALLOWED_ORIGINS: 'http://localhost:5173' }) });
    user = await signUp(t, 'origin-user@example.com');
    port = Number(new URL(t.baseUrl).port);
  });
  afterAll(() => t?.close());

  /** POST initialize with this Host and Origin; the status. */
  const httpStatus = (host: string, origin: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const body = JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'origin', version: '1' } },
      });
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/api/v1/mcp',
          method: 'POST',
          headers: {
            host,
            origin,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            authorization: `Bearer ${user.token}`,
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  const wsStatus = async (origin: string): Promise<number> =>
    upgradeStatus(`ws://127.0.0.1:${port}/api/v1/mcp/ws?ticket=${await ticketFor(t, user.token)}`, { origin });

  const own = () => `http://127.0.0.1:${port}`;
  const foreign = () => [
    'http://localhost:1',
    `http://127.0.0.1:${port + 1}`,
    `http://localhost:${port}`,
    'http://localhost:5174',
    'https://localhost:5173',
  ];

  it('over HTTP: accepts its own origin and the configured one, refuses the same hostname on another port or scheme', async () => {
    expect(await httpStatus(`127.0.0.1:${port}`, own())).toBe(200);
    expect(await httpStatus(`127.0.0.1:${port}`, 'http://localhost:5173')).toBe(200);
    const refused: Record<string, number> = {};
    for (const origin of foreign()) refused[origin] = await httpStatus(`127.0.0.1:${port}`, origin);
    expect(refused).toEqual(Object.fromEntries(foreign().map((origin) => [origin, 403])));
    // The Host header names the endpoint the browser thinks it talks to: localhost:1 is not this one.
    expect(await httpStatus('localhost:1', own())).toBe(403);
    expect(await httpStatus('localhost:1', 'http://localhost:1')).toBe(200);
  });

  it('over WebSocket: the upgrade applies the same rule', async () => {
    expect(await wsStatus(own())).toBe(101);
    expect(await wsStatus('http://localhost:5173')).toBe(101);
    const refused: Record<string, number> = {};
    for (const origin of foreign()) refused[origin] = await wsStatus(origin);
    expect(refused).toEqual(Object.fromEntries(foreign().map((origin) => [origin, 403])));
  });
});
