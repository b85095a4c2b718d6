import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Clock } from '@app/core';
import { RedisConnection, RedisScript } from '@app/redis';

/** Deletes the lock only when it is still the holder's (a lock that expired and was taken again is left alone). */
const UNLOCK = new RedisScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`);

/**
 * Short-lived shared state of the user-oauth flows: one-time values (connect tickets, the state
 * and PKCE verifier of a started authorization) taken exactly once, and the refresh lock. In
 * Redis when REDIS_URL is set, so a flow started on one replica finishes on another and one
 * refresh serves every replica; in this process otherwise (one replica).
 */
@Injectable()
export class OAuthFlowStore {
  private readonly local = new Map<string, { value: string; expiresAtMs: number }>();

  constructor(
    private readonly redis: RedisConnection,
    private readonly clock: Clock,
  ) {}

  async put(kind: string, id: string, value: object, ttlMs: number): Promise<void> {
    const text = JSON.stringify(value);
    if (this.shared()) {
      await this.redis.run((client) => client.set(this.redis.key('upstream-oauth', kind, id), text, 'PX', ttlMs));
      return;
    }
    this.sweep();
    this.local.set(`${kind}:${id}`, { value: text, expiresAtMs: this.clock.nowMs() + ttlMs });
  }

  /** The value, left in place (a connect link is used up only once the right user opened it). */
  async peek<T>(kind: string, id: string): Promise<T | undefined> {
    let text: string | null | undefined;
    if (this.shared()) {
      text = await this.redis.run((client) => client.get(this.redis.key('upstream-oauth', kind, id)));
    } else {
      const entry = this.local.get(`${kind}:${id}`);
      text = entry && entry.expiresAtMs > this.clock.nowMs() ? entry.value : undefined;
    }
    return text ? (JSON.parse(text) as T) : undefined;
  }

  /** The value, removed in the same step: a second take (a replayed link or callback) finds nothing. */
  async take<T>(kind: string, id: string): Promise<T | undefined> {
    let text: string | null | undefined;
    if (this.shared()) {
      text = await this.redis.run((client) => client.getdel(this.redis.key('upstream-oauth', kind, id)));
    } else {
      const entry = this.local.get(`${kind}:${id}`);
      this.local.delete(`${kind}:${id}`);
      text = entry && entry.expiresAtMs > this.clock.nowMs() ? entry.value : undefined;
    }
    return text ? (JSON.parse(text) as T) : undefined;
  }

  /** Takes the lock `name` for `ttlMs` (it expires by itself if its holder dies); the release function, or undefined when held. */
  async lock(name: string, ttlMs: number): Promise<(() => Promise<void>) | undefined> {
    const token = randomUUID();
    if (this.shared()) {
      const key = this.redis.key('upstream-oauth', 'lock', name);
      const taken = await this.redis.run((client) => client.set(key, token, 'PX', ttlMs, 'NX'));
      if (taken !== 'OK') return undefined;
      return async () => {
        await this.redis.run((client) => UNLOCK.run(client, [key], [token])).catch(() => undefined);
      };
    }
    const key = `lock:${name}`;
    const held = this.local.get(key);
    if (held && held.expiresAtMs > this.clock.nowMs()) return undefined;
    this.local.set(key, { value: token, expiresAtMs: this.clock.nowMs() + ttlMs });
    return async () => {
      if (this.local.get(key)?.value === token) this.local.delete(key);
    };
  }

  private shared(): boolean {
    return this.redis.enabled;
  }

  private sweep(): void {
    const now = this.clock.nowMs();
    for (const [key, entry] of this.local) if (entry.expiresAtMs <= now) this.local.delete(key);
  }
}
