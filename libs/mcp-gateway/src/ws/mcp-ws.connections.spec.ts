import type { WebSocket, WebSocketServer } from 'ws';
import type { Principal } from '@app/core';
import { MCP_SERVER_SHUTDOWN } from '../sessions/mcp-connection.registry';
import { McpWsConnections, SERVER_GOING_AWAY_CLOSE_CODE } from './mcp-ws.connections';
import type { UpgradeRequest } from './mcp-ws.adapter';

const principal = { userId: 'usr_1', sessionId: 'ses_parent', permissions: [], roles: [], via: 'jwt' } as unknown as Principal;

/** The gateway with fakes around it; `registry.open` can begin the shutdown while the upgrade is being checked. */
function gateway(options: { shutdownDuringCheck: boolean }) {
  let closing = false;
  const registry = {
    get closing() {
      return closing;
    },
    open: jest.fn(async () => {
      if (options.shutdownDuringCheck) closing = true;
      return 'ses_ws';
    }),
    add: jest.fn(() => !closing),
    abandon: jest.fn(async () => undefined),
    closedByClient: jest.fn(async () => undefined),
  };
  const connections = new McpWsConnections(
    { check: () => undefined } as never,
    { redeem: async () => principal } as never,
    { refresh: async (p: Principal) => p } as never,
    { consume: async () => ({ limit: 10, remaining: 9, resetSec: 60 }) } as never,
    { resolve: async (p: Principal) => ({ principal: p, context: null }) } as never,
    registry as never,
    { build: () => ({ connect: async () => undefined, close: async () => undefined }) } as never,
    {} as never,
  );
  const server = { options: {} } as unknown as WebSocketServer & {
    options: { verifyClient: (info: { req: UpgradeRequest }, done: (ok: boolean) => void) => void };
  };
  connections.attach(server);
  const request = {
    url: '/api/v1/mcp/ws?ticket=t',
    headers: { host: 'localhost', 'sec-websocket-protocol': 'mcp' },
    socket: { remoteAddress: '127.0.0.1' },
  } as unknown as UpgradeRequest;
  const socket = { close: jest.fn(), on: jest.fn(), send: jest.fn(), readyState: 1 } as unknown as WebSocket & { close: jest.Mock };
  const upgrade = async () => {
    const verified = await new Promise<boolean>((resolve) => server.options.verifyClient({ req: request }, resolve));
    if (verified) connections.accept(socket, request);
    return verified;
  };
  return { registry, socket, upgrade };
}

describe('McpWsConnections at shutdown', () => {
  it('closes (1001) and ends the session of a socket whose upgrade was being checked when shutdown began', async () => {
    const { registry, socket, upgrade } = gateway({ shutdownDuringCheck: true });
    expect(await upgrade()).toBe(true);
    expect(socket.close.mock.calls).toEqual([[SERVER_GOING_AWAY_CLOSE_CODE, 'server shutting down']]);
    expect(registry.abandon.mock.calls).toEqual([['ses_ws', 'usr_1', MCP_SERVER_SHUTDOWN]]);
  });

  it('keeps a socket accepted before shutdown (the registry closes it then)', async () => {
    const { registry, socket, upgrade } = gateway({ shutdownDuringCheck: false });
    expect(await upgrade()).toBe(true);
    expect(socket.close).not.toHaveBeenCalled();
    expect(registry.add).toHaveBeenCalledTimes(1);
    expect(registry.abandon).not.toHaveBeenCalled();
  });

  it('refuses an upgrade that arrives once shutdown has begun, before opening a session', async () => {
    const { registry, upgrade } = gateway({ shutdownDuringCheck: true });
    expect(await upgrade()).toBe(true);
    expect(await upgrade()).toBe(false);
    expect(registry.open).toHaveBeenCalledTimes(1);
  });
});
