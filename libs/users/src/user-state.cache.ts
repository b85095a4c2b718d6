import { Injectable } from '@nestjs/common';
import type { Role } from '@app/core';
import type { UserStatus } from './users.repository';

/** What every authenticated request needs to know about its user. */
export interface UserAccessState {
  id: string;
  email: string;
  status: UserStatus;
  roles: Role[];
  permissions: string[];
}

/**
 * Per-request user state, cached so the guard does not query the users table on every call.
 * Changes to roles, permissions or status invalidate the entry explicitly, so they apply on
 * the next request; `invalidate` resolves once every replica has been told
 * (ClusterUserStateCache).
 */
export abstract class UserStateCache {
  /** The cached state, or undefined when it has to be loaded. */
  abstract get(userId: string): UserAccessState | undefined;
  /**
   * A token to pass to set(): a load that started before an invalidation must not put its
   * (stale) result back into the cache.
   */
  abstract generation(userId: string): number;
  abstract set(userId: string, state: UserAccessState, generation: number): void;
  abstract invalidate(userId: string): void | Promise<void>;
}

/** How long a cached state is trusted without an invalidation (bounds staleness across replicas). */
export const DEFAULT_USER_STATE_TTL_MS = 10_000;
const MAX_ENTRIES = 50_000;

@Injectable()
export class InMemoryUserStateCache extends UserStateCache {
  private readonly entries = new Map<string, { state: UserAccessState; expiresAt: number }>();
  /** Per-user invalidation stamps from one increasing counter; `floor` covers users without one. */
  private readonly stamps = new Map<string, number>();
  private counter = 0;
  private floor = 0;

  constructor(private readonly ttlMs = DEFAULT_USER_STATE_TTL_MS) {
    super();
  }

  get(userId: string): UserAccessState | undefined {
    const entry = this.entries.get(userId);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.entries.delete(userId);
      return undefined;
    }
    return entry.state;
  }

  generation(userId: string): number {
    return this.stamps.get(userId) ?? this.floor;
  }

  set(userId: string, state: UserAccessState, generation: number): void {
    if (generation !== this.generation(userId)) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(userId, { state, expiresAt: Date.now() + this.ttlMs });
  }

  invalidate(userId: string): void {
    this.entries.delete(userId);
    if (this.stamps.size >= MAX_ENTRIES) {
      // Forgetting stamps must not let a load that started earlier cache stale state: raising
      // the floor above every stamp handed out makes all of those loads miss.
      this.stamps.clear();
      this.floor = ++this.counter;
    }
    this.stamps.set(userId, ++this.counter);
  }

  /** Forgets every entry, and makes every load already under way miss. */
  invalidateAll(): void {
    this.entries.clear();
    this.stamps.clear();
    this.floor = ++this.counter;
  }
}
