import { Logger } from '@nestjs/common';
import { Server } from '@modelcontextprotocol/server';
import { BackgroundJobs } from '@app/core';
import type { Principal } from '@app/core';
import type { McpCaller } from '../tools/mcp-caller';
import { LegacySessionHandler, ParsedBody } from './legacy-session.handler';
import type { LiveConnection } from './mcp-connection.registry';
import type { McpHandshake, StoredMcpSession } from './mcp-session.repository';

const URL_ = 'http://gateway.test/api/v1/mcp';
const VERSION = '2025-11-25';

function callerFor(userId: string, extra: Partial<Principal> = {}, contextId: string | null = null): McpCaller {
  return {
    principal: {
      userId,
      email: `${userId}@example.com`,
      sessionId: `login_${userId}`,
      roles: ['user'],
      permissions: ['tools:execute'],
      via: 'jwt',
      ...extra,
    } as Principal,
    context: contextId === null ? null : { id: contextId, tools: [], settings: {} },
    contextTools: null,
    ipAddress: '203.0.113.7',
    userAgent: 'spec',
  };
}
const alice = callerFor('usr_alice');

/**
 * What every replica shares: the `sessions` and `mcp_sessions` rows, as plain maps (the
 * database). Each replica (handler) gets its own connection registry over it, a trimmed fake of
 * McpConnectionRegistry that keeps its live copies in a map, and a builder that makes a small
 * SDK server (tools/list answers one tool). Constructor wiring lives in `replica` only.
 */
function cluster() {
  const stored = new Map<string, StoredMcpSession>();
  const endedHow: Array<{ sessionId: string; reason: string }> = [];
  let opened = 0;
  const endSession = (sessionId: string, reason: string) => {
    const row = stored.get(sessionId);
    if (row?.active) {
      row.active = false;
      endedHow.push({ sessionId, reason });
    }
  };
  const store = {
    find: async (sessionId: string) => (stored.has(sessionId) ? { ...stored.get(sessionId)! } : null),
    inactiveAmong: async (ids: string[]) => ids.filter((id) => !stored.get(id)?.active),
  };
  const sessions = { isActive: async (sessionId: string) => stored.get(sessionId)?.active === true };

  function replica() {
    const live = new Map<string, LiveConnection>();
    const released: Array<{ sessionId: string; why: string }> = [];
    const registry = {
      closing: false,
      get: (sessionId: string) => live.get(sessionId),
      open: jest.fn(async (caller: McpCaller, kind: 'http', transport: string, handshake?: McpHandshake) => {
        const sessionId = `ses_mcp_${++opened}`;
        stored.set(sessionId, {
          sessionId,
          kind,
          transport,
          userId: caller.principal.userId,
          contextId: caller.context?.id ?? null,
          active: true,
          credential: caller.principal.apiKeyId ?? caller.principal.via,
          parentSessionId: caller.principal.sessionId || null,
          parentActive: true,
          handshake: handshake ?? null,
        });
        return sessionId;
      }),
      add: (connection: LiveConnection) => {
        if (registry.closing) return false;
        live.set(connection.sessionId, connection);
        return true;
      },
      release: (sessionId: string, why: string) => {
        released.push({ sessionId, why });
        const connection = live.get(sessionId);
        live.delete(sessionId);
        connection?.close(why);
      },
      closedByClient: jest.fn(async (sessionId: string, how: string) => {
        const connection = live.get(sessionId);
        live.delete(sessionId);
        connection?.close('closed by client');
        endSession(sessionId, `closed (${how})`);
      }),
      end: jest.fn(async (session: { sessionId: string }, reason: string) => {
        registry.release(session.sessionId, reason);
        endSession(session.sessionId, reason);
      }),
      abandon: jest.fn(async (sessionId: string, _userId: string, why: string) => {
        live.delete(sessionId);
        endSession(sessionId, why);
      }),
    };
    const builder = {
      build: jest.fn(() => {
        const server = new Server({ name: 'spec', version: '1' }, { capabilities: { tools: {} } });
        server.setRequestHandler('tools/list', async () => ({ tools: [{ name: 'tool_echo', inputSchema: { type: 'object' as const } }] }));
        return server;
      }),
    };
    const clock = { nowMs: () => Date.now(), now: () => new Date() };
    const handler = new LegacySessionHandler(
      registry as never,
      sessions as never,
      builder as never,
      store as never,
      clock as never,
      new BackgroundJobs(),
    );
    return { handler, registry, builder, live, released };
  }

  return { stored, endedHow, replica };
}

type Replica = ReturnType<ReturnType<typeof cluster>['replica']>;

/** One JSON-RPC POST (or another method) as the gateway's endpoint hands it to the handler. */
function send(replica: Replica, caller: McpCaller, message: unknown, sessionId?: string, method = 'POST'): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json, text/event-stream', 'content-type': 'application/json' };
  if (sessionId) Object.assign(headers, { 'mcp-session-id': sessionId, 'mcp-protocol-version': VERSION });
  const body: ParsedBody | undefined = method === 'POST' ? { ok: true, value: message } : undefined;
  return replica.handler.handle(
    new Request(URL_, { method, headers, ...(method === 'POST' ? { body: JSON.stringify(message) } : {}) }),
    caller,
    body,
  );
}

const initializeMessage = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'spec-client', version: '1' } },
};

/** initialize + notifications/initialized; returns the session id. */
async function openSession(replica: Replica, caller = alice): Promise<string> {
  const res = await send(replica, caller, initializeMessage);
  await res.text();
  expect(res.status).toBe(200);
  const sessionId = res.headers.get('mcp-session-id')!;
  const initialized = await send(replica, caller, { jsonrpc: '2.0', method: 'notifications/initialized' }, sessionId);
  expect(initialized.status).toBe(202);
  return sessionId;
}

/** The JSON-RPC answers in a response (an SSE stream or a JSON body). */
async function messagesOf(res: Response): Promise<Array<{ id?: unknown; result?: any; error?: any }>> {
  const text = await res.text();
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    return text
      .split('\n')
      .filter((line) => line.startsWith('data:'))
      .map((line) => JSON.parse(line.slice('data:'.length)));
  }
  return [JSON.parse(text)];
}

const listTools = (replica: Replica, caller: McpCaller, sessionId: string, id = 2) =>
  send(replica, caller, { jsonrpc: '2.0', id, method: 'tools/list' }, sessionId);

describe('LegacySessionHandler (2025-era sessions)', () => {
  beforeAll(() => Logger.overrideLogger(false));
  it('asks for a session id when a request that is not initialize comes without one, and refuses a body that is not JSON', async () => {
    const { replica } = cluster();
    const a = replica();
    const res = await send(a, alice, { jsonrpc: '2.0', id: 1, method: 'tools/list' });
    expect(res.status).toBe(400);
    expect((await res.json()) as unknown).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32000, message: 'Bad Request: Mcp-Session-Id header is required' },
    });

    const garbage = await a.handler.handle(new Request(URL_, { method: 'POST', body: '{' }), alice, { ok: false });
    expect(garbage.status).toBe(400);
    expect(((await garbage.json()) as { error: { code: number } }).error.code).toBe(-32700);
  });

  it("opens a session on initialize: the id is the registry's, the handshake is stored, the copy is registered to the caller", async () => {
    const { replica, stored } = cluster();
    const a = replica();
    const sessionId = await openSession(a);
    expect(sessionId).toBe('ses_mcp_1');
    expect(stored.get(sessionId)).toMatchObject({
      userId: 'usr_alice',
      credential: 'jwt',
      parentSessionId: 'login_usr_alice',
      handshake: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'spec-client', version: '1' } },
    });
    expect(a.live.get(sessionId)).toMatchObject({
      kind: 'http',
      userId: 'usr_alice',
      credential: 'jwt',
      contextId: null,
      parentSessionId: 'login_usr_alice',
    });

    const listed = await messagesOf(await listTools(a, alice, sessionId));
    expect(listed).toEqual([{ jsonrpc: '2.0', id: 2, result: { tools: [{ name: 'tool_echo', inputSchema: { type: 'object' } }] } }]);
  });

  it("answers 404 to a session id that is not the caller's: another user, another credential, another context endpoint, or unknown", async () => {
    const { replica } = cluster();
    const a = replica();
    const sessionId = await openSession(a);
    const strangers = [
      callerFor('usr_bob'),
      callerFor('usr_alice', { via: 'api_key', apiKeyId: 'key_1' }),
      callerFor('usr_alice', {}, 'ctx_1'),
    ];
    for (const stranger of strangers) {
      const res = await listTools(a, stranger, sessionId);
      expect({ who: stranger.principal.apiKeyId ?? stranger.context?.id ?? stranger.principal.userId, status: res.status }).toEqual({
        who: stranger.principal.apiKeyId ?? stranger.context?.id ?? stranger.principal.userId,
        status: 404,
      });
    }
    expect((await listTools(a, alice, 'ses_mcp_unknown')).status).toBe(404);
    // The owner still gets through.
    expect((await listTools(a, alice, sessionId)).status).toBe(200);
  });

  it('drops its copy and answers 404 once the session ended elsewhere', async () => {
    const { replica, stored } = cluster();
    const a = replica();
    const sessionId = await openSession(a);
    stored.get(sessionId)!.active = false;
    expect((await listTools(a, alice, sessionId)).status).toBe(404);
    expect(a.released).toEqual([{ sessionId, why: 'session ended' }]);
    expect(a.live.has(sessionId)).toBe(false);
  });

  it('ends the session on DELETE; the id answers 404 from then on', async () => {
    const { replica, stored } = cluster();
    const a = replica();
    const sessionId = await openSession(a);
    const deleted = await send(a, alice, undefined, sessionId, 'DELETE');
    expect(deleted.status).toBe(200);
    expect(a.registry.closedByClient).toHaveBeenCalledWith(sessionId, 'DELETE');
    expect(stored.get(sessionId)!.active).toBe(false);
    expect((await listTools(a, alice, sessionId)).status).toBe(404);
  });

  describe('another replica', () => {
    it('adopts a session it holds no copy of: replays the stored handshake once and serves the owner', async () => {
      const { replica } = cluster();
      const a = replica();
      const b = replica();
      const sessionId = await openSession(a);

      const [first, second] = await Promise.all([listTools(b, alice, sessionId, 2), listTools(b, alice, sessionId, 3)]);
      expect([first.status, second.status]).toEqual([200, 200]);
      expect((await messagesOf(first))[0].result.tools.map((tool: { name: string }) => tool.name)).toEqual(['tool_echo']);
      await second.text();
      // Two concurrent requests, one rebuild.
      expect(b.builder.build).toHaveBeenCalledTimes(1);
      expect(b.live.get(sessionId)).toMatchObject({ userId: 'usr_alice', credential: 'jwt' });
    });

    it('does not adopt a session for anyone but its owner', async () => {
      const { replica } = cluster();
      const a = replica();
      const b = replica();
      const sessionId = await openSession(a);
      expect((await listTools(b, callerFor('usr_bob'), sessionId)).status).toBe(404);
      expect(b.builder.build).not.toHaveBeenCalled();
    });

    it('ends, instead of adopting, a session whose credential session has ended', async () => {
      const { replica, stored, endedHow } = cluster();
      const a = replica();
      const b = replica();
      const sessionId = await openSession(a);
      stored.get(sessionId)!.parentActive = false;
      expect((await listTools(b, alice, sessionId)).status).toBe(404);
      expect(endedHow).toEqual([{ sessionId, reason: 'parent_session_ended' }]);
      expect(b.builder.build).not.toHaveBeenCalled();
    });
  });

  it('refuses new sessions with 503 and Retry-After while shutting down', async () => {
    const { replica, stored } = cluster();
    const a = replica();
    a.registry.closing = true;
    const res = await send(a, alice, initializeMessage);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(stored.size).toBe(0);
  });
});
