import { AppConfig, BackgroundJobs, Clock } from '@app/core';
import type { Transaction } from '@app/database';
import { SessionActivityService } from './session-activity.service';
import { InMemorySessionStateCache } from './session-state.cache';
import type { SessionTerminatedEvent, SessionTerminationNotifier } from './session-termination.notifier';
import type { EndedSession, Session, SessionActivityDelta, SessionRepository } from './session.repository';
import { SESSION_EXPIRED, SessionService } from './session.service';

const IDLE_SEC = 600;
const START = Date.UTC(2030, 0, 1);
const TX = { id: 1 } as unknown as Transaction;

class TestClock extends Clock {
  ms = START;
  override now(): Date {
    return new Date(this.ms);
  }
  override nowMs(): number {
    return this.ms;
  }
}

/** The sessions table in memory, with the statements' conditions. */
class InMemorySessionRepository {
  readonly rows = new Map<string, Session>();
  readonly connected = true;
  reads = 0;

  async insert(_tx: Transaction, session: Session): Promise<void> {
    this.rows.set(session.id, { ...session });
  }

  async findById(id: string): Promise<Session | null> {
    const row = this.rows.get(id);
    return row ? { ...row } : null;
  }

  async stateOf(id: string) {
    this.reads++;
    const row = this.rows.get(id);
    return row ? { userId: row.userId, status: row.status, lastActivity: row.lastActivity } : null;
  }

  async end(_tx: Transaction | null, id: string, now: Date, reason: string, endedBy: string | null): Promise<EndedSession[]> {
    const row = this.rows.get(id);
    return row && row.status === 'active' ? [this.terminate(row, now, reason, endedBy)] : [];
  }

  async endAllForUser(_tx: Transaction, userId: string, now: Date, reason: string, endedBy: string | null, exceptId: string | null) {
    return [...this.rows.values()]
      .filter((row) => row.userId === userId && row.status === 'active' && row.id !== exceptId)
      .map((row) => this.terminate(row, now, reason, endedBy));
  }

  async endIdle(idleBefore: Date, now: Date, reason: string): Promise<EndedSession[]> {
    return [...this.rows.values()]
      .filter((row) => row.status === 'active' && row.lastActivity < idleBefore)
      .map((row) => this.terminate(row, now, reason, null));
  }

  async addActivity(deltas: SessionActivityDelta[]): Promise<void> {
    for (const delta of deltas) {
      const row = this.rows.get(delta.id);
      if (!row) continue;
      row.messagesReceived += delta.received;
      row.messagesSent += delta.sent;
      row.toolExecutions += delta.toolExecutions;
      row.errors += delta.errors;
      if (delta.lastActivity && delta.lastActivity > row.lastActivity) row.lastActivity = delta.lastActivity;
    }
  }

  private terminate(row: Session, now: Date, reason: string, endedBy: string | null): EndedSession {
    Object.assign(row, { status: 'terminated', endedAt: now, endReason: reason, endedBy });
    return { id: row.id, userId: row.userId };
  }
}

function setup() {
  const clock = new TestClock();
  const config = { auth: { sessionIdleTimeoutSec: IDLE_SEC, sessionFlushMs: 5_000 } } as AppConfig;
  const repository = new InMemorySessionRepository();
  const asRepository = repository as unknown as SessionRepository;
  const activity = new SessionActivityService(asRepository, clock, config);
  const events: Array<{ tx: Transaction | null; events: SessionTerminatedEvent[] }> = [];
  const notifier = { notify: (tx: Transaction | null, ended: SessionTerminatedEvent[]) => void events.push({ tx, events: ended }) };
  const cache = new InMemorySessionStateCache();
  const service = new SessionService(
    asRepository,
    cache,
    clock,
    config,
    activity,
    notifier as unknown as SessionTerminationNotifier,
    new BackgroundJobs(),
  );
  const open = (userId = 'usr_alice') => service.open(TX, { userId, connectionType: 'http', ipAddress: '203.0.113.9', userAgent: 'unit' });
  return { service, repository, activity, events, clock, open };
}

describe('SessionService', () => {
  it('opens an active session in the caller transaction', async () => {
    const { service, repository, clock, open } = setup();
    const session = await open();
    expect(session.id).toMatch(/^ses_/);
    expect(repository.rows.get(session.id)).toMatchObject({
      userId: 'usr_alice',
      status: 'active',
      connectionType: 'http',
      contextId: null,
      startedAt: clock.now(),
      lastActivity: clock.now(),
    });
    expect(await service.isActive(session.id)).toBe(true);
  });

  it('refuses an ended session at once, and ends it only once', async () => {
    const { service, repository, events, open } = setup();
    const session = await open();
    expect(await service.isActive(session.id)).toBe(true);
    expect(await service.end(TX, session.id, 'logout', 'usr_alice')).toBe(true);
    expect(await service.isActive(session.id)).toBe(false);
    expect(repository.rows.get(session.id)).toMatchObject({ status: 'terminated', endReason: 'logout', endedBy: 'usr_alice' });
    expect(events).toEqual([{ tx: TX, events: [{ sessionId: session.id, userId: 'usr_alice', reason: 'logout', endedBy: 'usr_alice' }] }]);
    expect(await service.end(TX, session.id, 'logout', 'usr_alice')).toBe(false);
    expect(events.flatMap((call) => call.events)).toHaveLength(1);
  });

  it('expires a session idle past the timeout on its next use', async () => {
    const { service, repository, events, clock, open } = setup();
    const session = await open();
    clock.ms += IDLE_SEC * 1000 + 1;
    expect(await service.isActive(session.id)).toBe(false);
    expect(repository.rows.get(session.id)).toMatchObject({ status: 'terminated', endReason: SESSION_EXPIRED, endedBy: null });
    expect(events.at(-1)).toEqual({
      tx: null,
      events: [{ sessionId: session.id, userId: 'usr_alice', reason: SESSION_EXPIRED, endedBy: null }],
    });
  });

  it('keeps a session that is used alive past the idle timeout counted from its start', async () => {
    const { service, open, clock } = setup();
    const session = await open();
    for (let i = 0; i < 4; i++) {
      clock.ms += (IDLE_SEC * 1000) / 2;
      expect(await service.isActive(session.id)).toBe(true);
    }
  });

  it('sweeps idle sessions, judging by activity this process has not written yet', async () => {
    const { service, repository, open, clock } = setup();
    const used = await open();
    const idle = await open('usr_bob');
    clock.ms += (IDLE_SEC * 1000) / 2;
    expect(await service.isActive(used.id)).toBe(true);
    clock.ms += (IDLE_SEC * 1000) / 2 + 1;
    expect(await service.expireIdle()).toBe(1);
    expect(repository.rows.get(idle.id)?.status).toBe('terminated');
    expect(repository.rows.get(used.id)?.status).toBe('active');
    expect(await service.isActive(idle.id)).toBe(false);
  });

  it("ends every session of a user but the caller's own", async () => {
    const { service, repository, open } = setup();
    const mine = await open();
    const other = await open();
    const someoneElses = await open('usr_bob');
    expect(await service.endAllForUser(TX, 'usr_alice', 'password_changed', { exceptSessionId: mine.id, endedBy: 'usr_alice' })).toBe(1);
    expect(await service.isActive(other.id)).toBe(false);
    expect(await service.isActive(mine.id)).toBe(true);
    expect(await service.isActive(someoneElses.id)).toBe(true);
    expect(repository.rows.get(other.id)).toMatchObject({ endReason: 'password_changed', endedBy: 'usr_alice' });
  });

  it('reads the row again after the revalidation interval and sees an ending made elsewhere', async () => {
    const { service, repository, open, clock } = setup();
    const session = await open();
    expect(await service.isActive(session.id)).toBe(true);
    const reads = repository.reads;
    expect(await service.isActive(session.id)).toBe(true);
    expect(repository.reads).toBe(reads);
    // Another replica ends it: this process has only its cache until it re-reads the row.
    repository.rows.get(session.id)!.status = 'terminated';
    clock.ms += 15_000;
    expect(await service.isActive(session.id)).toBe(false);
    expect(repository.reads).toBe(reads + 1);
  });

  it('answers from memory without a promise between revalidations, and refuses an ending at once', async () => {
    const { service, repository, open, clock } = setup();
    const session = await open();
    // The first use reads the row (a promise); the next ones are decided from memory.
    expect(service.isActive(session.id)).toBeInstanceOf(Promise);
    await service.isActive(session.id);
    const reads = repository.reads;
    clock.ms += 1_000;
    expect(service.isActive(session.id)).toBe(true);
    expect(repository.reads).toBe(reads);
    await service.end(TX, session.id, 'logout', 'usr_alice');
    expect(service.isActive(session.id)).toBe(false);
    // Past the revalidation interval the row is read again: a promise, however it ends.
    const other = await open();
    await service.isActive(other.id);
    clock.ms += 15_000;
    const answer = service.isActive(other.id);
    expect(answer).toBeInstanceOf(Promise);
    expect(await answer).toBe(true);
  });

  it('refuses an unknown session', async () => {
    const { service } = setup();
    expect(await service.isActive('ses_unknown')).toBe(false);
  });
});
