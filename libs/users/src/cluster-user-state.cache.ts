import { ClusterEventBus, clusterEvent } from '@app/redis';
import { DEFAULT_USER_STATE_TTL_MS, InMemoryUserStateCache, UserAccessState, UserStateCache } from './user-state.cache';

export const USER_CHANGED = clusterEvent<{ userId: string }>('users.changed');

/**
 * The cache every replica keeps in step through the cluster event bus (Redis pub/sub with
 * REDIS_URL, in-process without): an invalidation reaches the other replicas before
 * `invalidate` resolves. While this replica may be missing invalidations (its subscription is
 * down, the Redis breaker is open, or its subscriber has not answered a heartbeat lately) nothing
 * is served from the cache, so every request reads the user's row; once it hears Redis again it
 * forgets everything it cached.
 */
export class ClusterUserStateCache extends UserStateCache {
  private readonly local: InMemoryUserStateCache;

  constructor(
    private readonly bus: ClusterEventBus,
    ttlMs = DEFAULT_USER_STATE_TTL_MS,
  ) {
    super();
    this.local = new InMemoryUserStateCache(ttlMs);
    bus.subscribe(USER_CHANGED, ({ userId }) => {
      if (typeof userId === 'string') this.local.invalidate(userId);
    });
    bus.onResync(() => this.local.invalidateAll());
  }

  get(userId: string): UserAccessState | undefined {
    return this.bus.connected ? this.local.get(userId) : undefined;
  }

  generation(userId: string): number {
    return this.local.generation(userId);
  }

  set(userId: string, state: UserAccessState, generation: number): void {
    if (this.bus.connected) this.local.set(userId, state, generation);
  }

  async invalidate(userId: string): Promise<void> {
    await this.bus.publish(USER_CHANGED, { userId });
  }
}
