import { CLIENT_CAPABILITIES_META_KEY, ProtocolError } from '@modelcontextprotocol/server';
import type { Server, ServerContext } from '@modelcontextprotocol/server';
import { Clock } from '@app/core';
import type { ClientRequestRelay } from '@app/tools';
import type { McpCaller } from '../tools/mcp-caller';
import { AgentRequestRelays, RelayTarget } from './agent-request-relay';
import { HeldCalls } from './held-calls';
import { RequestStateSeal } from './request-state.seal';

const CONFIG = { secrets: { encryptionKey: 'k'.repeat(32) }, upstreams: { relayHoldMs: 60_000 } } as never;
const TARGET: RelayTarget = { kind: 'tool', id: 'relay25.ask-roots', upstream: 'upstream:relay25' };
const ROOTS = { roots: [{ uri: 'file:///work' }] };

function callerOf(userId: string): McpCaller {
  return { principal: { userId }, correlation: {} } as never;
}

/** A 2026-07-28 request's context: its envelope declares roots; on a retry, the state and answers. */
function modernRequest(retry?: { requestState: string; inputResponses: Record<string, unknown> }): ServerContext {
  return {
    mcpReq: {
      envelope: { [CLIENT_CAPABILITIES_META_KEY]: { roots: {} } },
      requestState: () => retry?.requestState,
      inputResponses: retry?.inputResponses,
      signal: new AbortController().signal,
    },
  } as never;
}

/** Two replicas sharing the key (as replicas do), each holding its own calls. */
function replicas(): { a: AgentRequestRelays; b: AgentRequestRelays; audited: string[] } {
  const seal = new RequestStateSeal(CONFIG, new Clock());
  const audited: string[] = [];
  const audits = { recordStandalone: async (entry: { details: { status: string } }) => void audited.push(entry.details.status) };
  return {
    a: new AgentRequestRelays(seal, audits as never, new HeldCalls(CONFIG)),
    b: new AgentRequestRelays(seal, audits as never, new HeldCalls(CONFIG)),
    audited,
  };
}

/** A 2025-era upstream's call that asks for the roots in the middle, then answers with them. */
const asksForRoots = async (relay: ClientRequestRelay) => ({
  answer: await relay.send!({ method: 'roots/list' }, new AbortController().signal),
});

type Round = { resultType: string; inputRequests: Record<string, { method: string }>; requestState: string };

describe('AgentRequestRelays.run (a 2026-07-28 agent, a 2025-era upstream asking mid-call)', () => {
  it('holds the call, asks the agent, and finishes it with the answers of the retry', async () => {
    const { a } = replicas();
    const alice = callerOf('usr_alice');
    const round = (await a.run({} as Server, alice, TARGET, modernRequest(), null, asksForRoots)) as Round;
    expect(round.resultType).toBe('input_required');
    expect(Object.values(round.inputRequests)).toEqual([{ method: 'roots/list' }]);
    const key = Object.keys(round.inputRequests)[0];
    const retry = modernRequest({ requestState: round.requestState, inputResponses: { [key]: ROOTS } });
    await expect(a.run({} as Server, alice, TARGET, retry, null, asksForRoots)).resolves.toEqual({ answer: ROOTS });
    // Good for one retry only.
    await expect(a.run({} as Server, alice, TARGET, retry, null, asksForRoots)).rejects.toMatchObject({
      code: -32602,
      data: { reason: 'call_not_held' },
    });
  });

  it('tells a retry that reached another replica so (-32603), and leaves the call to the replica holding it', async () => {
    const { a, b } = replicas();
    const alice = callerOf('usr_alice');
    const round = (await a.run({} as Server, alice, TARGET, modernRequest(), null, asksForRoots)) as Round;
    const key = Object.keys(round.inputRequests)[0];
    const retry = modernRequest({ requestState: round.requestState, inputResponses: { [key]: ROOTS } });
    const elsewhere = await b.run({} as Server, alice, TARGET, retry, null, asksForRoots).catch((error: unknown) => error);
    expect(elsewhere).toBeInstanceOf(ProtocolError);
    expect(elsewhere).toMatchObject({ code: -32603, data: { reason: 'held_by_another_replica' } });
    await expect(a.run({} as Server, alice, TARGET, retry, null, asksForRoots)).resolves.toEqual({ answer: ROOTS });
  });

  it("refuses another user's retry (-32602) without touching the held call", async () => {
    const { a } = replicas();
    const round = (await a.run({} as Server, callerOf('usr_alice'), TARGET, modernRequest(), null, asksForRoots)) as Round;
    const key = Object.keys(round.inputRequests)[0];
    const retry = modernRequest({ requestState: round.requestState, inputResponses: { [key]: ROOTS } });
    await expect(a.run({} as Server, callerOf('usr_mallory'), TARGET, retry, null, asksForRoots)).rejects.toMatchObject({
      code: -32602,
      data: { reason: 'invalid_request_state' },
    });
    await expect(a.run({} as Server, callerOf('usr_alice'), TARGET, retry, null, asksForRoots)).resolves.toEqual({ answer: ROOTS });
  });
});
