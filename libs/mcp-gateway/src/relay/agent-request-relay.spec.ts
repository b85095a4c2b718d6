import { CLIENT_CAPABILITIES_META_KEY, ProtocolError } from '@modelcontextprotocol/server';
import type { Server, ServerContext } from '@modelcontextprotocol/server';
import { Clock } from '@app/core';
import type { ClientRequestRelay } from '@app/tools';
import type { McpCaller } from '../tools/mcp-caller';
import { ClusterEventBus, InProcessEventBus } from '@app/redis';
import { AgentRequestRelays, RelayTarget } from './agent-request-relay';
import { HeldCallForwarding } from './held-call-forwarding';
import { HeldCalls } from './held-calls';
import { RequestStateSeal } from './request-state.seal';

const CONFIG = { secrets: { encryptionKey: 'k'.repeat(32) }, upstreams: { relayHoldMs: 60_000 } } as never;
const TARGET: RelayTarget = { kind: 'tool', id: 'relay25.ask-roots', upstream: 'upstream:relay25' };
const ROOTS = { roots: [{ uri: 'file:///work' }] };

function callerOf(userId: string): McpCaller {
  return { principal: { userId }, correlation: {} } as never;
}

/** A 2026-07-28 request's context: its envelope declares roots; on a retry, the state and answers. */
function modernRequest(
  retry?: { requestState: string; inputResponses: Record<string, unknown> },
  signal = new AbortController().signal,
  progress?: { token: string; sent: unknown[] },
): ServerContext {
  return {
    mcpReq: {
      ...(progress
        ? {
            _meta: { progressToken: progress.token },
            notify: async (notification: unknown) => void progress.sent.push(notification),
          }
        : {}),
      envelope: { [CLIENT_CAPABILITIES_META_KEY]: { roots: {} } },
      requestState: () => retry?.requestState,
      inputResponses: retry?.inputResponses,
      signal,
    },
  } as never;
}

/** A replica: its relays, the calls it holds, and how it reaches the others. */
function replica(seal: RequestStateSeal, bus: ClusterEventBus): { relays: AgentRequestRelays; forwarding: HeldCallForwarding } {
  const audits = { recordStandalone: async () => undefined };
  const holds = new HeldCalls(CONFIG);
  const forwarding = new HeldCallForwarding(bus, holds);
  return { relays: new AgentRequestRelays(seal, audits as never, holds, forwarding), forwarding };
}

/** Two replicas sharing the key and an event bus (as replicas share ENCRYPTION_KEY and Redis), each holding its own calls. */
function replicas(): { a: AgentRequestRelays; b: AgentRequestRelays; bForwarding: HeldCallForwarding } {
  const seal = new RequestStateSeal(CONFIG, new Clock());
  const bus = new InProcessEventBus();
  const b = replica(seal, bus);
  return { a: replica(seal, bus).relays, b: b.relays, bForwarding: b.forwarding };
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

  it('passes a retry that reached another replica on to the one holding the call, and its answer back', async () => {
    const { a, b } = replicas();
    const alice = callerOf('usr_alice');
    const round = (await a.run({} as Server, alice, TARGET, modernRequest(), null, asksForRoots)) as Round;
    const key = Object.keys(round.inputRequests)[0];
    const retry = modernRequest({ requestState: round.requestState, inputResponses: { [key]: ROOTS } });
    await expect(b.run({} as Server, alice, TARGET, retry, null, asksForRoots)).resolves.toEqual({ answer: ROOTS });
    // The state is used up wherever the replay lands.
    await expect(b.run({} as Server, alice, TARGET, retry, null, asksForRoots)).rejects.toMatchObject({
      code: -32602,
      data: { reason: 'call_not_held' },
    });
    await expect(a.run({} as Server, alice, TARGET, retry, null, asksForRoots)).rejects.toMatchObject({ code: -32602 });
  });

  it('releases the held call when the agent cancels a retry another replica passed on', async () => {
    const { a, b } = replicas();
    const alice = callerOf('usr_alice');
    // The upstream asks twice: the second round is the one the agent cancels.
    let upstreamCall: AbortSignal | undefined;
    const asksTwice = async (relay: ClientRequestRelay, signal: AbortSignal) => {
      upstreamCall = signal;
      await relay.send!({ method: 'roots/list' }, new AbortController().signal);
      await relay.send!({ method: 'roots/list' }, new AbortController().signal);
      return 'done';
    };
    const round = (await a.run({} as Server, alice, TARGET, modernRequest(), null, asksTwice)) as Round;
    const key = Object.keys(round.inputRequests)[0];
    const agentSignal = new AbortController();
    const retry = modernRequest({ requestState: round.requestState, inputResponses: { [key]: ROOTS } }, agentSignal.signal);
    const second = (await b.run({} as Server, alice, TARGET, retry, null, asksTwice)) as Round;
    expect(second.resultType).toBe('input_required');
    const next = modernRequest({ requestState: second.requestState, inputResponses: {} }, agentSignal.signal);
    const pending = b.run({} as Server, alice, TARGET, next, null, asksTwice).catch((error: unknown) => error);
    agentSignal.abort();
    // Released on A: the upstream call is aborted, the retry fails, and the state names a call no longer held.
    expect(await pending).toBeInstanceOf(Error);
    expect(upstreamCall!.aborted).toBe(true);
    await expect(a.run({} as Server, alice, TARGET, next, null, asksTwice)).rejects.toMatchObject({ code: -32602 });
  });

  it("reports the call's progress on the request of the round running now, under that request's token", async () => {
    const { a } = replicas();
    const alice = callerOf('usr_alice');
    const reportsAround = async (relay: ClientRequestRelay, _signal: AbortSignal, progress?: (value: number) => void) => {
      progress?.(1);
      const answer = await relay.send!({ method: 'roots/list' }, new AbortController().signal);
      progress?.(2);
      return { answer };
    };
    const first = { token: 'round-1', sent: [] as unknown[] };
    const round = (await a.run({} as Server, alice, TARGET, modernRequest(undefined, undefined, first), null, reportsAround)) as Round;
    const key = Object.keys(round.inputRequests)[0];
    const second = { token: 'round-2', sent: [] as unknown[] };
    const retry = modernRequest({ requestState: round.requestState, inputResponses: { [key]: ROOTS } }, undefined, second);
    await expect(a.run({} as Server, alice, TARGET, retry, null, reportsAround)).resolves.toEqual({ answer: ROOTS });
    expect(first.sent).toEqual([{ method: 'notifications/progress', params: { progressToken: 'round-1', progress: 1 } }]);
    expect(second.sent).toEqual([{ method: 'notifications/progress', params: { progressToken: 'round-2', progress: 2 } }]);
  });

  it('answers -32603 held_by_another_replica when the replica holding the call does not answer (it stopped)', async () => {
    const seal = new RequestStateSeal(CONFIG, new Clock());
    // A and B hear nothing of each other.
    const a = replica(seal, new InProcessEventBus()).relays;
    const b = replica(seal, new InProcessEventBus());
    b.forwarding.ackTimeoutMs = 50;
    const alice = callerOf('usr_alice');
    const round = (await a.run({} as Server, alice, TARGET, modernRequest(), null, asksForRoots)) as Round;
    const key = Object.keys(round.inputRequests)[0];
    const retry = modernRequest({ requestState: round.requestState, inputResponses: { [key]: ROOTS } });
    const error = await b.relays.run({} as Server, alice, TARGET, retry, null, asksForRoots).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ProtocolError);
    expect(error).toMatchObject({ code: -32603, data: { reason: 'held_by_another_replica' } });
    // The call is still A's to finish.
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
