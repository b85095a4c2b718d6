import { Logger } from '@nestjs/common';

/** A typed event name: `clusterEvent<{ ids: string[] }>('sessions.denied')`. Payloads are JSON. */
export interface ClusterEvent<T> {
  readonly name: string;
  /** Never set: carries the payload type. */
  readonly __payload?: T;
}

export function clusterEvent<T>(name: string): ClusterEvent<T> {
  return { name };
}

/** `local`: published by this process (delivered at publish time); `remote`: by another replica. */
export type ClusterEventOrigin = 'local' | 'remote';

export type ClusterEventHandler<T> = (payload: T, origin: ClusterEventOrigin) => void;

/**
 * Events every replica must see (sessions ended, users changed, catalogue changed). `publish`
 * delivers to this process's handlers at once, exactly once, then to the other replicas; it never
 * throws. Whoever keeps a cache next to the bus must honour `connected` (false: events from
 * other replicas may be missed right now, do not trust the cache) and `onResync` (events may
 * have been missed: drop what was cached).
 */
export abstract class ClusterEventBus {
  protected readonly logger = new Logger(ClusterEventBus.name);
  private readonly handlers = new Map<string, Set<ClusterEventHandler<unknown>>>();
  private readonly resyncListeners = new Set<() => void>();

  /** Resolves true once the other replicas have been reached (always true in-process). */
  abstract publish<T>(event: ClusterEvent<T>, payload: T): Promise<boolean>;

  /** False while events from other replicas could be missed. */
  abstract get connected(): boolean;

  /** Subscribes; returns the unsubscribe function. */
  subscribe<T>(event: ClusterEvent<T>, handler: ClusterEventHandler<T>): () => void {
    let set = this.handlers.get(event.name);
    if (!set) this.handlers.set(event.name, (set = new Set()));
    set.add(handler as ClusterEventHandler<unknown>);
    return () => set.delete(handler as ClusterEventHandler<unknown>);
  }

  /** Called after a gap in which other replicas' events may have been lost. */
  onResync(listener: () => void): () => void {
    this.resyncListeners.add(listener);
    return () => this.resyncListeners.delete(listener);
  }

  protected dispatch(name: string, payload: unknown, origin: ClusterEventOrigin): void {
    for (const handler of this.handlers.get(name) ?? []) {
      try {
        handler(payload, origin);
      } catch (error) {
        this.logger.error({ err: error, event: name }, 'Cluster event handler failed');
      }
    }
  }

  protected resync(): void {
    for (const listener of this.resyncListeners) {
      try {
        listener();
      } catch (error) {
        this.logger.error({ err: error }, 'Cluster resync listener failed');
      }
    }
  }
}

/** One replica: the event reaches this process's handlers and nothing else. */
export class InProcessEventBus extends ClusterEventBus {
  get connected(): boolean {
    return true;
  }

  async publish<T>(event: ClusterEvent<T>, payload: T): Promise<boolean> {
    this.dispatch(event.name, payload, 'local');
    return true;
  }
}
