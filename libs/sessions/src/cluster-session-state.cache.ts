import { Injectable } from '@nestjs/common';
import { ClusterEventBus, clusterEvent } from '@app/redis';
import { CachedSession, InMemorySessionStateCache, SessionStateCache } from './session-state.cache';
import { SESSIONS_TERMINATED } from './session-termination.notifier';

export const SESSIONS_DENIED = clusterEvent<{ sessionIds: string[] }>('sessions.denied');

/**
 * The cache every replica shares through the cluster event bus (Redis pub/sub with REDIS_URL,
 * in-process without). A denial is announced before `deny` resolves, i.e. before the ending
 * transaction commits and long before the terminate call answers, so another replica refuses
 * the session from then on. While this replica may be missing announcements (its subscription
 * is down, the Redis breaker is open, or its subscriber has not answered a heartbeat lately) it
 * remembers no active session: every request reads the session row (fail closed, at the cost of
 * a query per request); once it hears Redis again it forgets what it remembered.
 */
@Injectable()
export class ClusterSessionStateCache extends SessionStateCache {
  private readonly local = new InMemorySessionStateCache();
  /** Entries read before the last resubscription may predate an ending we missed. */
  private resyncedAtMs = 0;

  constructor(private readonly bus: ClusterEventBus) {
    super();
    bus.subscribe(SESSIONS_DENIED, ({ sessionIds }) => {
      if (Array.isArray(sessionIds)) this.local.deny(...sessionIds.filter((id) => typeof id === 'string'));
    });
    // Also from the after-commit announcement: covers a denial this replica missed.
    bus.subscribe(SESSIONS_TERMINATED, ({ events }) => {
      if (Array.isArray(events)) this.local.deny(...events.map((event) => event?.sessionId).filter((id) => typeof id === 'string'));
    });
    bus.onResync(() => {
      this.resyncedAtMs = Date.now();
      this.local.forgetActive();
    });
  }

  get(sessionId: string): CachedSession | undefined {
    return this.bus.connected ? this.local.get(sessionId) : undefined;
  }

  set(sessionId: string, session: CachedSession): void {
    if (!this.bus.connected || session.checkedAtMs < this.resyncedAtMs) return;
    this.local.set(sessionId, session);
  }

  async deny(...sessionIds: string[]): Promise<void> {
    if (sessionIds.length === 0) return;
    // Denies here synchronously (the bus delivers to this process first), then tells the others.
    await this.bus.publish(SESSIONS_DENIED, { sessionIds });
  }

  isDenied(sessionId: string): boolean {
    return this.local.isDenied(sessionId);
  }
}
