import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { ClusterEvent, ClusterEventBus } from './cluster-event-bus';
import { OutageLog } from './outage-log';
import { RedisConnection } from './redis-connection.service';

interface Envelope {
  /** Event name. */
  e: string;
  /** Publishing replica: its own copy is skipped, it was delivered locally at publish time. */
  o: string;
  p: unknown;
}

/**
 * Redis pub/sub on one channel per deployment. Pub/sub is at-most-once: a replica whose
 * subscription is down, or that has no fresh proof it hears Redis (RedisConnection's breaker and
 * heartbeat), may miss events, so `connected` is false until it is subscribed and proven again,
 * and then `onResync` listeners drop what they cached.
 */
export class RedisEventBus extends ClusterEventBus {
  private readonly replicaId = randomUUID();
  private readonly channel: string;
  private subscribed = false;
  private readonly publishOutage: OutageLog;

  constructor(private readonly redis: RedisConnection) {
    super();
    this.channel = redis.key('events');
    this.publishOutage = new OutageLog(
      this.logger,
      'Publishing cluster events to Redis failed; other replicas learn of changes when they re-read them',
      'Publishing cluster events to Redis works again',
    );
    const subscriber: Redis = redis.subscriber;
    subscriber.on('message', (channel: string, message: string) => this.receive(channel, message));
    subscriber.on('ready', () => void this.listen());
    subscriber.on('close', () => (this.subscribed = false));
    // Whatever was announced while the breaker was open may have been missed.
    redis.breaker.onChange((open) => {
      if (!open && this.subscribed) this.resync();
    });
  }

  get connected(): boolean {
    return this.subscribed && this.redis.hearsEverything;
  }

  /**
   * When the announcement cannot be sent (Redis away), resolves false only once the other replicas
   * that lost Redis too have stopped trusting their caches, so the change the caller is about to
   * answer for (a logout, a suspension) already applies everywhere when it answers.
   */
  async publish<T>(event: ClusterEvent<T>, payload: T): Promise<boolean> {
    this.dispatch(event.name, payload, 'local');
    const envelope: Envelope = { e: event.name, o: this.replicaId, p: payload };
    try {
      await this.redis.run((client) => client.publish(this.channel, JSON.stringify(envelope)));
      this.publishOutage.recovered();
      return true;
    } catch (error) {
      this.publishOutage.failed(error);
      await this.redis.untilPeersDistrust();
      return false;
    }
  }

  private async listen(): Promise<void> {
    try {
      await this.redis.subscriber.subscribe(this.channel);
    } catch (error) {
      this.logger.warn({ err: error }, 'Subscribing to cluster events failed; retrying on the next reconnect');
      return;
    }
    this.subscribed = true;
    // Anything published while this replica was not subscribed is lost.
    this.resync();
  }

  private receive(channel: string, message: string): void {
    if (channel !== this.channel) return;
    let envelope: Envelope;
    try {
      envelope = JSON.parse(message) as Envelope;
    } catch {
      return;
    }
    if (envelope.o === this.replicaId || typeof envelope.e !== 'string') return;
    this.dispatch(envelope.e, envelope.p, 'remote');
  }
}
