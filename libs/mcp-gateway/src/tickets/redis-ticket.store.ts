import { Injectable, Logger } from '@nestjs/common';
import { AppException, ErrorCode } from '@app/core';
import { OutageLog, RedisConnection } from '@app/redis';
import { TicketRecord, TicketStore } from './ticket.store';

/** How soon a refused ticket call is worth retrying: the breaker's proof takes a heartbeat or two. */
const RETRY_AFTER_SEC = '5';

/**
 * Tickets in Redis (SET with PX, GETDEL), so one issued by any replica is redeemable once on any
 * other. While Redis is away (its breaker open) tickets are refused with a 503: one kept in this
 * process would work only if the load balancer sent the upgrade back to this replica, a failure
 * the client could not tell from a bad ticket. Clients that can set headers connect with a bearer
 * token meanwhile.
 */
@Injectable()
export class RedisTicketStore extends TicketStore {
  private readonly logger = new Logger(RedisTicketStore.name);
  private readonly outage = new OutageLog(
    this.logger,
    'Redis unavailable: WebSocket tickets are refused (503) until it is back',
    'Redis answers again: WebSocket tickets are issued again',
  );

  constructor(private readonly redis: RedisConnection) {
    super();
  }

  async put(hash: string, record: TicketRecord, ttlMs: number): Promise<void> {
    try {
      await this.redis.run((client) => client.set(this.key(hash), JSON.stringify(record), 'PX', Math.max(1, Math.ceil(ttlMs))));
      this.outage.recovered();
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  async take(hash: string): Promise<TicketRecord | undefined> {
    let stored: string | null;
    try {
      stored = await this.redis.run((client) => client.getdel(this.key(hash)));
      this.outage.recovered();
    } catch (error) {
      throw this.unavailable(error);
    }
    if (stored === null) return undefined;
    try {
      return JSON.parse(stored) as TicketRecord;
    } catch {
      return undefined;
    }
  }

  private key(hash: string): string {
    return this.redis.key('ticket', hash);
  }

  private unavailable(error: unknown): AppException {
    this.outage.failed(error);
    return new AppException(
      ErrorCode.SERVICE_UNAVAILABLE,
      'WebSocket tickets are unavailable while Redis is unreachable; retry later or connect with an Authorization header',
      503,
      [],
      {
        'retry-after': RETRY_AFTER_SEC,
      },
    );
  }
}
