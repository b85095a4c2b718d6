import { Client } from '@modelcontextprotocol/client';
import { DataSource } from 'typeorm';
import { startTestApp, TestApp } from '../support/test-app';
import { Caller, connectHttp, createApiKey, createContext, listAll, mcpEnv, signUp } from './mcp-test-kit';
import { McpTestToolsModule } from './mcp-test-tools.module';

const ERAS = ['modern', 'legacy'] as const;
const BUILTINS = [
  'tool_echo',
  'tool_filesystem',
  'tool_http_fetch',
  'tool_json_query',
  'tool_progress',
  'tool_statistics',
  'tool_system_metrics',
];
const CALLS_EACH = 8;

interface Agent {
  label: string;
  user: Caller;
  credential: string;
  era: (typeof ERAS)[number];
  /** What its tools/list must show. */
  tools: string[];
  /** Steps of its progress call: a different count per agent, so its notifications are recognisable. */
  steps: number;
  client?: Client;
}

/**
 * Each MCP request is answered by state of its own (the SDK server, its transport, the tool-list
 * splice, the caller): concurrent calls of different users, on both protocol eras, each with a
 * bearer token or a context-bound API key, must each get their own answer, their own progress
 * notifications and their own tool list, and every execution row must belong to the user who
 * made the call. Fired all at once, so the requests interleave inside the gateway.
 */
describe('MCP over Streamable HTTP: concurrent callers never see each other (postgres)', () => {
  let t: TestApp;
  let db: DataSource;
  const agents: Agent[] = [];

  beforeAll(async () => {
    t = await startTestApp('postgres', { env: mcpEnv(), extraModules: [McpTestToolsModule] });
    db = t.app.get(DataSource);
    const users = [
      await signUp(t, 'conc-ada@example.com'),
      await signUp(t, 'conc-bob@example.com'),
      await signUp(t, 'conc-cy@example.com'),
    ];
    const contextId = await createContext(t, users[2], 'conc-narrow', ['tool_echo', 'tool_progress']);
    const narrowKey = await createApiKey(t, users[2], { name: 'conc-narrow-agent', contextId });
    for (const era of ERAS) {
      users.forEach((user, i) => agents.push({ label: `user${i}-${era}`, user, credential: user.token, era, tools: BUILTINS, steps: 0 }));
      agents.push({
        label: `narrow-key-${era}`,
        user: users[2],
        credential: narrowKey.key,
        era,
        tools: ['tool_echo', 'tool_progress'],
        steps: 0,
      });
    }
    agents.forEach((agent, i) => (agent.steps = 2 + i));
    for (const agent of agents) agent.client = (await connectHttp(`${t.baseUrl}/api/v1/mcp`, agent.credential, agent.era)).client;
  });
  afterAll(async () => {
    for (const agent of agents) await agent.client?.close().catch(() => undefined);
    await t?.close();
  });

  it('answers every call, progress notification and tool list to its own caller, and records each call as its user', async () => {
    const fired = agents.flatMap((agent) => [
      ...Array.from({ length: CALLS_EACH }, async (_, i) => {
        const message = `conc:${agent.label}:${i}`;
        const result = await agent.client!.callTool({ name: 'tool_echo', arguments: { message } });
        return { agent: agent.label, kind: 'echo', expected: { message }, got: result.structuredContent };
      }),
      (async () => {
        const progress: number[] = [];
        const result = await agent.client!.callTool(
          { name: 'tool_progress', arguments: { steps: agent.steps, stepMs: 5 } },
          { onprogress: (p: { progress: number }) => progress.push(p.progress) },
        );
        const steps = Array.from({ length: agent.steps }, (_, i) => i + 1);
        return {
          agent: agent.label,
          kind: 'progress',
          expected: { counted: agent.steps, progress: steps },
          got: { ...(result.structuredContent as object), progress },
        };
      })(),
      (async () => ({ agent: agent.label, kind: 'list', expected: agent.tools, got: await listAll(agent.client!) }))(),
    ]);
    const answers = await Promise.all(fired);
    expect(answers).toHaveLength(agents.length * (CALLS_EACH + 2));
    for (const answer of answers) expect(answer).toEqual({ ...answer, got: answer.expected });

    // Every echo's execution row is the calling user's.
    const rows: Array<{ user_id: string; message: string }> = await db.query(
      `SELECT user_id, input->>'message' AS message FROM tool_executions WHERE tool_id = 'tool_echo' AND input->>'message' LIKE 'conc:%'`,
    );
    expect(rows).toHaveLength(agents.length * CALLS_EACH);
    const owner = new Map(agents.map((agent) => [agent.label, agent.user.userId]));
    for (const row of rows) {
      const label = row.message.split(':')[1];
      expect({ message: row.message, user: row.user_id }).toEqual({ message: row.message, user: owner.get(label) });
    }
  });
});
