import type { Client } from '@modelcontextprotocol/client';
import type { UpstreamRequestRelay } from '../upstream-request-relay';
import type { PerUserConnections } from '../upstream-auth';
import type { UsableCredential } from './upstream-credential.service';

/** An open connection to an upstream carrying one user's own credential. */
export interface UserLink {
  /** The user whose credential the connection carries: it serves no one else's call. */
  readonly userId: string;
  /** userId + the stored credential's id and version: a replaced secret never reuses this link. */
  readonly key: string;
  readonly client: Client;
  readonly relays: UpstreamRequestRelay;
  inUse: number;
  lastUsedMs: number;
}

/** Opens a connection sending exactly `headers` (the user's credential, nothing of the gateway's). */
export type OpenUserLink = (headers: Record<string, string>) => Promise<{ client: Client; relays: UpstreamRequestRelay }>;

export class UserLinksFullError extends Error {}

/**
 * The per-user connections of one upstream. A call takes the link of its own user and
 * credential version (`acquire`), opening it when there is none (one opening per key even when
 * many calls arrive at once), and gives it back (`release`). Links are keyed by user and
 * credential, checked again on the way out, and never shared: the gateway cannot send one
 * user's call with another user's credential, nor on another user's upstream session. Idle links
 * close after `idleMs`; at `maxConnections` the least recently used idle link closes first.
 */
export class UserLinkPool {
  private readonly links = new Map<string, UserLink>();
  private readonly opening = new Map<string, Promise<UserLink>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly auth: PerUserConnections,
    private readonly open: OpenUserLink,
    private readonly nowMs: () => number,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.min(auth.idleMs, 60_000));
    this.sweeper.unref();
  }

  get size(): number {
    return this.links.size;
  }

  async acquire(userId: string, credential: UsableCredential): Promise<UserLink> {
    const key = `${userId}\u0000${credential.id}\u0000${credential.version}`;
    let link = this.links.get(key);
    if (!link) {
      let pending = this.opening.get(key);
      if (!pending) {
        pending = this.openLink(userId, key, credential).finally(() => this.opening.delete(key));
        this.opening.set(key, pending);
      }
      link = await pending;
    }
    // Defence in depth: the key already says whose it is.
    if (link.userId !== userId) throw new Error('A per-user upstream connection was about to serve another user');
    link.inUse += 1;
    link.lastUsedMs = this.nowMs();
    return link;
  }

  release(link: UserLink): void {
    link.inUse = Math.max(0, link.inUse - 1);
    link.lastUsedMs = this.nowMs();
  }

  /** The link failed (connection lost, credential refused): the next call opens a fresh one. */
  drop(link: UserLink): void {
    if (this.links.get(link.key) === link) this.links.delete(link.key);
    void link.client.close().catch(() => undefined);
  }

  /** Closes every link of the user (their credential was deleted or replaced on this replica). */
  dropUser(userId: string): void {
    for (const link of [...this.links.values()]) if (link.userId === userId) this.drop(link);
  }

  async closeAll(): Promise<void> {
    clearInterval(this.sweeper);
    const links = [...this.links.values()];
    this.links.clear();
    await Promise.all(links.map((link) => link.client.close().catch(() => undefined)));
  }

  /** Closes links idle for longer than idleMs. */
  sweep(): void {
    const cutoff = this.nowMs() - this.auth.idleMs;
    for (const link of [...this.links.values()]) if (link.inUse === 0 && link.lastUsedMs <= cutoff) this.drop(link);
  }

  private async openLink(userId: string, key: string, credential: UsableCredential): Promise<UserLink> {
    // Links of the same user under an older credential are done with.
    for (const link of [...this.links.values()]) if (link.userId === userId && link.inUse === 0) this.drop(link);
    if (this.links.size + this.opening.size >= this.auth.maxConnections) this.evictOne();
    const { client, relays } = await this.open({ [this.auth.header]: `${this.auth.prefix}${credential.secret}` });
    const link: UserLink = { userId, key, client, relays, inUse: 0, lastUsedMs: this.nowMs() };
    // A connection that ends by itself (upstream gone, session expired) is forgotten; the next call reopens.
    const onclose = client.onclose;
    client.onclose = () => {
      onclose?.();
      if (this.links.get(key) === link) this.links.delete(key);
    };
    this.links.set(key, link);
    return link;
  }

  private evictOne(): void {
    let oldest: UserLink | undefined;
    for (const link of this.links.values()) if (link.inUse === 0 && (!oldest || link.lastUsedMs < oldest.lastUsedMs)) oldest = link;
    if (!oldest) throw new UserLinksFullError(`${this.auth.maxConnections} per-user connections are busy`);
    this.drop(oldest);
  }
}
