import { Injectable, Logger } from '@nestjs/common';
import { OutageLog, RedisConnection } from '@app/redis';
import { InMemoryTicketStore, TicketRecord, TicketStore } from './ticket.store';

/**
 * Tickets in Redis (SET with PX, GETDEL), so one issued by any replica is redeemable once on any
 * other. While Redis fails, tickets are kept in this process: they then work only on the replica
 * that issued them (still once). `take` looks in both, so a ticket issued during an outage still
 * works after it.
 */
@Injectable()
export class RedisTicketStore extends TicketStore {
  private readonly logger = new Logger(RedisTicketStore.name);
  private readonly fallback = new InMemoryTicketStore();
  private readonly outage = new OutageLog(
    this.logger,
    'Redis unavailable: WebSocket tickets work only on the replica that issued them until it is back',
    'Redis answers again: WebSocket tickets are shared across replicas again',
  );

  constructor(private readonly redis: RedisConnection) {
    super();
  }

  async put(hash: string, record: TicketRecord, ttlMs: number): Promise<void> {
    try {
      await this.redis.commands.set(this.key(hash), JSON.stringify(record), 'PX', Math.max(1, Math.ceil(ttlMs)));
      this.outage.recovered();
    } catch (error) {
      this.outage.failed(error);
      await this.fallback.put(hash, record);
    }
  }

  async take(hash: string): Promise<TicketRecord | undefined> {
    let stored: string | null = null;
    try {
      stored = await this.redis.commands.getdel(this.key(hash));
      this.outage.recovered();
    } catch (error) {
      this.outage.failed(error);
    }
    if (stored === null) return this.fallback.take(hash);
    try {
      return JSON.parse(stored) as TicketRecord;
    } catch {
      return undefined;
    }
  }

  private key(hash: string): string {
    return this.redis.key('ticket', hash);
  }
}
