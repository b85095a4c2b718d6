import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import {
  DataSource,
  EntityManager,
  EntitySubscriberInterface,
  QueryRunner,
  TransactionCommitEvent,
  TransactionRollbackEvent,
} from 'typeorm';
import { ClusterEventBus, clusterEvent } from '@app/redis';

/** A session that stopped being active (terminated, logged out, expired, revoked...). */
export interface SessionTerminatedEvent {
  sessionId: string;
  userId: string;
  /** The session's end reason (`terminated`, `logout`, `expired`, `suspended`, ...). */
  reason: string;
  /** Who ended it, when someone did. */
  endedBy: string | null;
}

export type SessionTerminatedListener = (event: SessionTerminatedEvent) => void;

export const SESSIONS_TERMINATED = clusterEvent<{ events: SessionTerminatedEvent[] }>('sessions.terminated');

/**
 * Tells listeners on every replica (the MCP gateway, to close live connections) that sessions
 * ended, through the cluster event bus. Events raised inside a transaction are delivered after
 * it commits (the commit waits for the publish) and dropped if it rolls back; requests of the
 * session are refused from the moment it ends regardless (the deny set), so this is only about
 * closing what is already open. A replica that misses the event (Redis away) closes such a
 * connection when the connection's next request finds the session ended.
 */
@Injectable()
export class SessionTerminationNotifier implements EntitySubscriberInterface {
  private readonly logger = new Logger(SessionTerminationNotifier.name);
  private readonly listeners = new Set<SessionTerminatedListener>();
  private readonly afterCommit = new WeakMap<QueryRunner, SessionTerminatedEvent[]>();

  constructor(
    @InjectDataSource() dataSource: DataSource,
    private readonly bus: ClusterEventBus,
  ) {
    // Transaction events reach every subscriber of the data source.
    dataSource.subscribers.push(this);
    bus.subscribe(SESSIONS_TERMINATED, ({ events }) => {
      if (Array.isArray(events)) this.deliver(events);
    });
  }

  /** Subscribes; returns the unsubscribe function. */
  onTerminated(listener: SessionTerminatedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Delivers when the manager's transaction commits, or now when there is none. */
  notify(manager: EntityManager | null, events: SessionTerminatedEvent[]): void {
    if (events.length === 0) return;
    const runner = manager?.queryRunner;
    if (!runner?.isTransactionActive) {
      void this.publish(events);
      return;
    }
    const queued = this.afterCommit.get(runner);
    if (queued) queued.push(...events);
    else this.afterCommit.set(runner, [...events]);
  }

  afterTransactionCommit(event: TransactionCommitEvent): Promise<void> | void {
    // A released savepoint also "commits"; only the outermost commit makes the change visible.
    if (event.queryRunner.isTransactionActive) return;
    const queued = this.afterCommit.get(event.queryRunner);
    if (!queued) return;
    this.afterCommit.delete(event.queryRunner);
    // TypeORM awaits this, so the transaction's caller returns after the other replicas were told.
    return this.publish(queued);
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    if (!event.queryRunner.isTransactionActive) this.afterCommit.delete(event.queryRunner);
  }

  /** Delivers here at once, then to the other replicas (never throws). */
  private async publish(events: SessionTerminatedEvent[]): Promise<void> {
    await this.bus.publish(SESSIONS_TERMINATED, { events });
  }

  private deliver(events: SessionTerminatedEvent[]): void {
    for (const event of events) {
      for (const listener of this.listeners) {
        try {
          listener(event);
        } catch (error) {
          this.logger.error({ err: error, sessionId: event.sessionId }, 'Session termination listener failed');
        }
      }
    }
  }
}
