import { DataSource } from 'typeorm';
import { DATABASE_KINDS, http, startTestApp, TestApp } from '../support/test-app';
import { Caller, execute, signUp, toolsEnv } from '../tools/tools-test-kit';

/** Tools run in a context (REST `context.contextId`): only its tools, its settings, never when archived. */
describe.each(DATABASE_KINDS)('running tools in a context (%s)', (kind) => {
  let t: TestApp;
  let db: DataSource;
  let alice: Caller;
  let bob: Caller;

  const createContext = async (caller: Caller, body: Record<string, unknown>): Promise<string> => {
    const res = await http(t.baseUrl, 'POST', '/api/v1/contexts', { token: caller.token, body });
    if (res.status !== 201) throw new Error(`create context: ${res.status} ${res.text}`);
    return res.body.id;
  };

  beforeAll(async () => {
    t = await startTestApp(kind, { env: toolsEnv() });
    db = t.app.get(DataSource);
    alice = await signUp(t, 'alice@ctx-run.example.com');
    bob = await signUp(t, 'bob@ctx-run.example.com');
  });
  afterAll(() => t?.close());

  it('runs a tool of the context and refuses one outside it', async () => {
    const contextId = await createContext(alice, { name: 'echo only', tools: ['tool_echo'] });
    const inside = await execute(t, alice, 'tool_echo', { parameters: { message: 'hi' }, context: { contextId } });
    expect(inside.status).toBe(200);
    expect(inside.body).toMatchObject({ status: 'completed', result: { message: 'hi' } });

    const outside = await execute(t, alice, 'tool_statistics', {
      parameters: { operation: 'describe', values: [1, 2, 3] },
      context: { contextId },
    });
    expect(outside.status).toBe(403);
    expect(outside.body.error).toBe('TOOL_NOT_IN_CONTEXT');
  });

  it("hides another user's context (404) and refuses an archived one", async () => {
    const contextId = await createContext(alice, { name: 'to archive', tools: ['tool_echo'] });
    const foreign = await execute(t, bob, 'tool_echo', { parameters: { message: 'x' }, context: { contextId } });
    expect(foreign.status).toBe(404);

    const archived = await http(t.baseUrl, 'PUT', `/api/v1/contexts/${contextId}`, {
      token: alice.token,
      body: { status: 'archived' },
    });
    expect(archived.status).toBe(200);
    const refused = await execute(t, alice, 'tool_echo', { parameters: { message: 'x' }, context: { contextId } });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toBe('CONTEXT_ARCHIVED');
    const [{ count }] = await db.query(
      `SELECT count(*)::int AS count FROM tool_executions WHERE user_id = $1 AND input::text LIKE '%"x"%'`,
      [alice.userId],
    );
    expect(count).toBe(0);
  });

  it("applies the context's default timeout and its own rate limit", async () => {
    const contextId = await createContext(alice, {
      name: 'tight',
      tools: ['tool_echo'],
      settings: { defaultTimeoutMs: 200, rateLimit: { requests: 2, window: '1m' }, team: 'kept as given' },
    });
    // The echo would answer after 5 s: TIMEOUT is the context's 200 ms default at work.
    const slow = await execute(t, alice, 'tool_echo', { parameters: { message: 'slow', delayMs: 5_000 }, context: { contextId } });
    expect(slow.status).toBe(200);
    expect(slow.body.status).toBe('failed');
    expect(slow.body.error.code).toBe('TIMEOUT');
    expect(slow.body.error.message).toMatch(/200 ms/);

    const second = await execute(t, alice, 'tool_echo', { parameters: { message: 'two' }, context: { contextId } });
    expect(second.status).toBe(200);
    const third = await execute(t, alice, 'tool_echo', { parameters: { message: 'three' }, context: { contextId } });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
    // Outside the context the tool's own (larger) budget still applies.
    const plain = await execute(t, alice, 'tool_echo', { parameters: { message: 'four' } });
    expect(plain.status).toBe(200);
  });
});
