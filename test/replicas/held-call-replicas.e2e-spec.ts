import { Client, ProtocolError, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { CallToolResult } from '@modelcontextprotocol/client';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../support/polling';
import { ServerProcess } from '../support/server-process';
import { ADMIN_EMAIL, Caller, execute, login } from '../tools/tools-test-kit';
import { stdioUpstream, writeUpstreamsFile } from '../upstream/upstream-test-kit';
import { ReplicaSet } from './replica-kit';

const RELAY_UPSTREAM = join(__dirname, '..', 'upstream', 'fixtures', 'relay-upstream.cjs');

/** A 2026-07-28 agent on one replica that answers input requests by hand (autoFulfill off). */
async function agentOn(server: ServerProcess, caller: Caller): Promise<Client> {
  const client = new Client(
    { name: 'held-replicas', version: '1.0.0' },
    {
      versionNegotiation: { mode: { pin: '2026-07-28' } },
      capabilities: { elicitation: { form: {} } },
      inputRequired: { autoFulfill: false },
    },
  );
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${server.baseUrl}/api/v1/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${caller.token}` } },
    }),
  );
  return client;
}

/**
 * A held call (a 2026-07-28 agent, a 2025-era upstream asking mid-call) is held by the replica
 * that answered the first round; the 2026-07-28 revision is stateless, so the retry may reach
 * another replica, which passes it on over Redis to the holder and gives the agent its answer.
 */
describe('a held call across two replicas sharing PostgreSQL and Redis', () => {
  let a: ServerProcess;
  let b: ServerProcess;
  let admin: Caller;
  const replicas = new ReplicaSet();

  beforeAll(async () => {
    const file = writeUpstreamsFile(mkdtempSync(join(tmpdir(), 'smcp-held-')), [
      stdioUpstream('relay25', RELAY_UPSTREAM, [], { protocol: 'legacy' }),
    ]);
    const { env } = await replicas.deployment({ MCP_UPSTREAMS_FILE: file });
    a = await replicas.start(env);
    b = await replicas.start(env);
    admin = await login({ baseUrl: a.baseUrl }, ADMIN_EMAIL);
    for (const server of [a, b]) {
      await waitFor(
        'relay25 in the catalogue',
        async () => (await execute({ baseUrl: server.baseUrl } as never, admin, 'relay25.plain', { parameters: {} })).status === 200,
        60_000,
      );
    }
  }, 180_000);

  afterAll(() => replicas.stopAll());

  it('a retry that reaches the other replica completes the call there, and its replay is refused on either', async () => {
    const onA = await agentOn(a, admin);
    const onB = await agentOn(b, admin);
    try {
      const round = (await onA.callTool({ name: 'relay25.ask-form', arguments: {} }, { allowInputRequired: true })) as unknown as {
        resultType: string;
        inputRequests: Record<string, { method: string }>;
        requestState: string;
      };
      expect(round.resultType).toBe('input_required');
      const key = Object.keys(round.inputRequests)[0];
      expect(round.inputRequests[key].method).toBe('elicitation/create');
      const retry = {
        name: 'relay25.ask-form',
        arguments: {},
        inputResponses: { [key]: { action: 'accept', content: { city: 'Narvik' } } },
        requestState: round.requestState,
      } as never;
      const result = (await onB.callTool(retry, { allowInputRequired: true })) as CallToolResult;
      expect(result.structuredContent).toEqual({ answer: 'accept:{"city":"Narvik"}', requestState: 'state-of-ask-form' });
      for (const client of [onA, onB]) {
        const replay = await client.callTool(retry, { allowInputRequired: true }).then(
          () => undefined,
          (error: unknown) => error as ProtocolError,
        );
        expect(replay).toBeInstanceOf(ProtocolError);
        expect(replay!.code).toBe(-32602);
      }
    } finally {
      await onA.close();
      await onB.close();
    }
  });
});
