import { DataSource } from 'typeorm';
import { SessionActivityService, SessionService, SessionTerminatedEvent, SessionTerminationNotifier } from '@app/sessions';
import { DATABASE_KINDS, http, HttpResult, startTestApp, TestApp } from '../support/test-app';
import {
  ADMIN_EMAIL,
  ADMIN_PASSWORD,
  comparable,
  controlClock,
  identityEnv,
  IdentityClient,
  PASSWORD,
  sessionOf,
} from '../support/identity';

const SESSION_FIELDS = [
  'connectionType',
  'contextId',
  'id',
  'ipAddress',
  'lastActivity',
  'metrics',
  'startedAt',
  'status',
  'userAgent',
  'userId',
];

interface Login {
  userId: string;
  token: string;
  refreshToken: string;
  sessionId: string;
}

async function login(identity: IdentityClient, email: string, password = PASSWORD, headers: Record<string, string> = {}): Promise<Login> {
  const registered = await identity.register(email, password);
  if (registered.status !== 201 && registered.status !== 409) throw new Error(`register ${email}: ${registered.status}`);
  const res = await identity.login(email, password, headers);
  if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${res.text}`);
  return {
    userId: res.body.user.id,
    token: res.body.accessToken,
    refreshToken: res.body.refreshToken,
    sessionId: sessionOf(res.body.accessToken),
  };
}

const ids = (res: HttpResult): string[] => (res.body.sessions ?? []).map((s: { id: string }) => s.id);

describe.each(DATABASE_KINDS)('sessions API (%s)', (kind) => {
  let t: TestApp;
  let db: DataSource;
  let identity: IdentityClient;
  let alice1: Login;
  let alice2: Login;
  let bob: Login;
  let admin: Login;

  const api = (who: { token: string }, method: string, path: string, body?: unknown): Promise<HttpResult> =>
    http(t.baseUrl, method, `/api/v1${path}`, { token: who.token, body });
  const row = async (sessionId: string) => (await db.query(`SELECT * FROM sessions WHERE id = $1`, [sessionId]))[0];
  const terminations = (sessionId: string) =>
    db.query(`SELECT user_id, details FROM audit_logs WHERE action = 'session.terminate' AND resource = $1 ORDER BY seq`, [
      `session:${sessionId}`,
    ]);

  beforeAll(async () => {
    t = await startTestApp(kind, { env: { ...identityEnv(), SESSION_FLUSH_MS: '30000' } });
    db = t.app.get(DataSource);
    identity = new IdentityClient(t.baseUrl);
    alice1 = await login(identity, 'alice.ses@example.com');
    alice2 = await login(identity, 'alice.ses@example.com', PASSWORD, { 'user-agent': 'sessions-test/2.0' });
    bob = await login(identity, 'bob.ses@example.com');
    admin = await login(identity, ADMIN_EMAIL, ADMIN_PASSWORD);
  });
  afterAll(() => t?.close());

  describe('GET /sessions', () => {
    it("lists the caller's own sessions, newest first, in exactly the contract's shape", async () => {
      const res = await api(alice1, 'GET', '/sessions');
      expect(res.status).toBe(200);
      expect(ids(res)).toEqual([alice2.sessionId, alice1.sessionId]);
      expect(res.body.pagination).toEqual({ page: 1, limit: 20, total: 2, pages: 1 });
      const [second] = res.body.sessions;
      expect(Object.keys(second).sort()).toEqual(SESSION_FIELDS);
      expect(Object.keys(second.metrics).sort()).toEqual(['errors', 'messagesReceived', 'messagesSent', 'toolExecutions']);
      expect(second).toMatchObject({
        id: alice2.sessionId,
        userId: alice1.userId,
        contextId: null,
        status: 'active',
        connectionType: 'http',
        ipAddress: '127.0.0.1',
        userAgent: 'sessions-test/2.0',
      });
      expect(new Date(second.startedAt).toISOString()).toBe(second.startedAt);
      expect(Date.parse(second.lastActivity)).toBeGreaterThanOrEqual(Date.parse(second.startedAt));
    });

    it('pages', async () => {
      const first = await api(alice1, 'GET', '/sessions?limit=1');
      expect(ids(first)).toEqual([alice2.sessionId]);
      expect(first.body.pagination).toEqual({ page: 1, limit: 1, total: 2, pages: 2 });
      expect(ids(await api(alice1, 'GET', '/sessions?limit=1&page=2'))).toEqual([alice1.sessionId]);
      expect(ids(await api(alice1, 'GET', '/sessions?limit=1&page=3'))).toEqual([]);
      for (const query of ['?limit=101', '?page=0', '?status=expired']) {
        expect({ query, status: (await api(alice1, 'GET', `/sessions${query}`)).status }).toEqual({ query, status: 400 });
      }
    });

    it("never shows another user's sessions to a non-admin; userId of someone else is 403", async () => {
      expect(ids(await api(bob, 'GET', '/sessions'))).toEqual([bob.sessionId]);
      expect((await api(bob, 'GET', `/sessions?userId=${alice1.userId}`)).status).toBe(403);
      expect(ids(await api(bob, 'GET', `/sessions?userId=${bob.userId}`))).toEqual([bob.sessionId]);
    });

    it("shows administrators everyone's sessions, filtered by userId and status", async () => {
      const all = await api(admin, 'GET', '/sessions?limit=100');
      expect(ids(all)).toEqual(expect.arrayContaining([alice1.sessionId, alice2.sessionId, bob.sessionId, admin.sessionId]));
      expect(ids(await api(admin, 'GET', `/sessions?userId=${alice1.userId}`))).toEqual([alice2.sessionId, alice1.sessionId]);
      expect(ids(await api(admin, 'GET', `/sessions?userId=${bob.userId}&status=terminated`))).toEqual([]);
      expect(ids(await api(admin, 'GET', `/sessions?userId=${bob.userId}&status=active`))).toEqual([bob.sessionId]);
    });

    it('needs a token', async () => {
      expect((await http(t.baseUrl, 'GET', '/api/v1/sessions')).status).toBe(401);
    });
  });

  describe('POST /sessions/{id}/terminate', () => {
    let events: SessionTerminatedEvent[];
    let unsubscribe: () => void;
    beforeEach(() => {
      events = [];
      unsubscribe = t.app.get(SessionTerminationNotifier).onTerminated((event) => events.push(event));
    });
    afterEach(() => unsubscribe());

    it("answers 404 for another user's session, exactly as for an unknown one", async () => {
      const unknown = await api(bob, 'POST', '/sessions/ses_doesnotexist/terminate');
      expect(unknown.status).toBe(404);
      const foreign = await api(bob, 'POST', `/sessions/${alice2.sessionId}/terminate`);
      expect(comparable(foreign)).toEqual(comparable(unknown));
      expect((await identity.me(alice2.token)).status).toBe(200);
      expect(events).toEqual([]);
    });

    it('ends the session: its token fails on the next request, its refresh fails, audited, announced', async () => {
      const res = await api(alice1, 'POST', `/sessions/${alice2.sessionId}/terminate`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ message: 'Session terminated', sessionId: alice2.sessionId, timestamp: expect.any(String) });
      expect(new Date(res.body.timestamp).toISOString()).toBe(res.body.timestamp);

      expect((await identity.me(alice2.token)).status).toBe(401);
      expect((await identity.refresh(alice2.refreshToken)).status).toBe(401);
      expect((await identity.me(alice1.token)).status).toBe(200);

      expect(await row(alice2.sessionId)).toMatchObject({ status: 'terminated', end_reason: 'terminated', ended_by: alice1.userId });
      expect(await terminations(alice2.sessionId)).toEqual([
        { user_id: alice1.userId, details: { ownerId: alice1.userId, endedBy: alice1.userId, byAdministrator: false } },
      ]);
      expect(events).toEqual([{ sessionId: alice2.sessionId, userId: alice1.userId, reason: 'terminated', endedBy: alice1.userId }]);

      const listed = await api(alice1, 'GET', '/sessions');
      expect(listed.body.sessions.find((s: { id: string }) => s.id === alice2.sessionId).status).toBe('terminated');
      expect(ids(await api(alice1, 'GET', '/sessions?status=active'))).toEqual([alice1.sessionId]);
      expect(ids(await api(alice1, 'GET', '/sessions?status=terminated'))).toEqual([alice2.sessionId]);
    });

    it('is harmless to repeat', async () => {
      const again = await api(alice1, 'POST', `/sessions/${alice2.sessionId}/terminate`);
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ message: 'Session was already terminated', sessionId: alice2.sessionId });
      expect(await terminations(alice2.sessionId)).toHaveLength(1);
      expect(await row(alice2.sessionId)).toMatchObject({ status: 'terminated', ended_by: alice1.userId });
      expect((await identity.me(alice2.token)).status).toBe(401);
    });

    it("lets an administrator end anyone's session, recorded as ended by them", async () => {
      const victim = await login(identity, 'carl.ses@example.com');
      const res = await api(admin, 'POST', `/sessions/${victim.sessionId}/terminate`);
      expect(res.status).toBe(200);
      expect((await identity.me(victim.token)).status).toBe(401);
      expect((await identity.refresh(victim.refreshToken)).status).toBe(401);
      expect(await row(victim.sessionId)).toMatchObject({ status: 'terminated', ended_by: admin.userId });
      expect(await terminations(victim.sessionId)).toEqual([
        { user_id: admin.userId, details: { ownerId: victim.userId, endedBy: admin.userId, byAdministrator: true } },
      ]);
      expect(events).toEqual([{ sessionId: victim.sessionId, userId: victim.userId, reason: 'terminated', endedBy: admin.userId }]);
    });

    it("ending one's own current session works like logging out", async () => {
      const own = await login(identity, 'dora.ses@example.com');
      expect((await api(own, 'POST', `/sessions/${own.sessionId}/terminate`)).status).toBe(200);
      expect((await api(own, 'GET', '/sessions')).status).toBe(401);
    });

    it('announces other endings too (logout), after they commit', async () => {
      const leaving = await login(identity, 'eve.ses@example.com');
      expect((await identity.logout(leaving.token)).status).toBe(200);
      expect(events).toEqual([{ sessionId: leaving.sessionId, userId: leaving.userId, reason: 'logout', endedBy: leaving.userId }]);
    });
  });

  describe('live metrics', () => {
    it('counts requests, errors and tool executions in the session, before and after they are written', async () => {
      const measured = await login(identity, 'frank.ses@example.com');
      const reader = await login(identity, 'frank.ses@example.com');
      expect((await identity.me(measured.token)).status).toBe(200);
      expect((await identity.me(measured.token)).status).toBe(200);
      expect((await api(measured, 'GET', '/contexts/ctx_nope')).status).toBe(404);
      const echo = await api(measured, 'POST', '/tools/tool_echo/execute', { parameters: { message: 'hi' } });
      expect(echo.status).toBe(200);
      expect(echo.body.status).toBe('completed');
      // Refused before running (invalid parameters): an error, not an execution.
      const invalid = await api(measured, 'POST', '/tools/tool_echo/execute', { parameters: {} });
      expect(invalid.status).toBe(400);
      expect(invalid.body.error).toBe('VALIDATION_ERROR');
      // Ran and failed (timed out): an execution and an error.
      const failed = await api(measured, 'POST', '/tools/tool_echo/execute', {
        parameters: { message: 'slow', delayMs: 5_000 },
        options: { timeout: 50 },
      });
      expect(failed.status).toBe(200);
      expect(failed.body.status).toBe('failed');

      const expected = { messagesReceived: 6, messagesSent: 6, toolExecutions: 2, errors: 3 };
      const live = await api(reader, 'GET', '/sessions');
      const session = live.body.sessions.find((s: { id: string }) => s.id === measured.sessionId);
      expect(session.metrics).toEqual(expected);
      expect(Date.parse(session.lastActivity)).toBeGreaterThan(Date.parse(session.startedAt));

      await t.app.get(SessionActivityService).flush();
      expect(await row(measured.sessionId)).toMatchObject({
        messages_received: 6,
        messages_sent: 6,
        tool_executions: 2,
        errors: 3,
      });
      const after = await api(reader, 'GET', '/sessions');
      expect(after.body.sessions.find((s: { id: string }) => s.id === measured.sessionId).metrics).toEqual(expected);
    });
  });
});

describe.each(DATABASE_KINDS)('session activity batching (%s)', (kind) => {
  const env = { ...identityEnv(), SESSION_FLUSH_MS: '30000', SESSION_IDLE_TIMEOUT: '60', ACCESS_TOKEN_TTL: '86400' };
  let t: TestApp;
  let db: DataSource;
  let identity: IdentityClient;

  const row = async (sessionId: string) => (await db.query(`SELECT * FROM sessions WHERE id = $1`, [sessionId]))[0];

  beforeAll(async () => {
    t = await startTestApp(kind, { env });
    db = t.app.get(DataSource);
    identity = new IdentityClient(t.baseUrl);
  });
  afterAll(() => t?.close());

  it('writes lastActivity in the batch, and the idle sweep judges by the latest activity', async () => {
    const dave = await login(identity, 'dave.batch@example.com');
    const startedAt = new Date((await row(dave.sessionId)).started_at).getTime();
    const clock = controlClock(t.app);
    try {
      clock.advance(50);
      expect((await identity.me(dave.token)).status).toBe(200);
      clock.advance(50);
      // 100 s after login, 50 s after the last request: within the 60 s timeout. The sweep
      // flushes first, so the unwritten activity keeps the session alive.
      await t.app.get(SessionService).expireIdle();
      const kept = await row(dave.sessionId);
      expect(kept.status).toBe('active');
      expect(new Date(kept.last_activity).getTime() - startedAt).toBeGreaterThanOrEqual(50_000);
      expect((await identity.me(dave.token)).status).toBe(200);

      await t.app.get(SessionActivityService).flush();
      expect(new Date((await row(dave.sessionId)).last_activity).getTime() - startedAt).toBeGreaterThanOrEqual(100_000);

      clock.advance(61);
      await t.app.get(SessionService).expireIdle();
      expect(await row(dave.sessionId)).toMatchObject({ status: 'terminated', end_reason: 'expired' });
      expect((await identity.me(dave.token)).status).toBe(401);
      const admin = await login(identity, ADMIN_EMAIL, ADMIN_PASSWORD);
      const listed = await http(t.baseUrl, 'GET', `/api/v1/sessions?userId=${dave.userId}`, { token: admin.token });
      expect(listed.body.sessions).toEqual([expect.objectContaining({ id: dave.sessionId, status: 'terminated' })]);
    } finally {
      clock.restore();
    }
  });

  it('shows a session idle past the timeout as terminated even before the sweep', async () => {
    const idle = await login(identity, 'ida.batch@example.com');
    const clock = controlClock(t.app);
    try {
      clock.advance(61);
      const admin = await login(identity, ADMIN_EMAIL, ADMIN_PASSWORD);
      const listed = await http(t.baseUrl, 'GET', `/api/v1/sessions?userId=${idle.userId}`, { token: admin.token });
      expect(listed.body.sessions).toEqual([expect.objectContaining({ id: idle.sessionId, status: 'terminated' })]);
      expect((await row(idle.sessionId)).status).toBe('active');
      const active = await http(t.baseUrl, 'GET', `/api/v1/sessions?userId=${idle.userId}&status=active`, { token: admin.token });
      expect(active.body.sessions).toEqual([]);
    } finally {
      clock.restore();
    }
  });

  it('keeps counts made just before a clean shutdown (they survive a restart)', async () => {
    const erin = await login(identity, 'erin.batch@example.com');
    expect((await identity.me(erin.token)).status).toBe(200);
    expect((await identity.me(erin.token)).status).toBe(200);
    expect((await http(t.baseUrl, 'GET', '/api/v1/contexts/ctx_nope', { token: erin.token })).status).toBe(404);
    // Still in memory only (the periodic flush is 30 s away). The hook counts once the response
    // has gone out, which may be just after the client has it.
    const activity = t.app.get(SessionActivityService);
    for (let i = 0; i < 100 && activity.pending(erin.sessionId)?.received !== 3; i++) await new Promise((r) => setTimeout(r, 10));
    expect(activity.pending(erin.sessionId)).toMatchObject({ received: 3, sent: 3, errors: 1 });

    await t.stop();
    t = await startTestApp(kind, { env, reuse: t });
    db = t.app.get(DataSource);
    identity = new IdentityClient(t.baseUrl);

    expect(await row(erin.sessionId)).toMatchObject({ messages_received: 3, messages_sent: 3, errors: 1, tool_executions: 0 });
    const admin = await login(identity, ADMIN_EMAIL, ADMIN_PASSWORD);
    const listed = await http(t.baseUrl, 'GET', `/api/v1/sessions?userId=${erin.userId}`, { token: admin.token });
    expect(listed.body.sessions[0].metrics).toEqual({ messagesReceived: 3, messagesSent: 3, toolExecutions: 0, errors: 1 });
  });
});
