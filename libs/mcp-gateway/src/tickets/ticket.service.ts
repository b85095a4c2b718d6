import { Inject, Injectable } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { APP_CONFIG, AppConfig, Clock, Principal } from '@app/core';
import { TicketStore } from './ticket.store';

export interface IssuedTicket {
  ticket: string;
  expiresIn: number;
  expiresAt: Date;
}

/**
 * Single-use, seconds-long tickets for WebSocket clients that cannot send headers: obtained over
 * authenticated REST, presented once as `?ticket=` in the upgrade URL. Bearer tokens and API keys
 * themselves are never accepted in a URL.
 */
@Injectable()
export class TicketService {
  private readonly ttlMs: number;

  constructor(
    private readonly store: TicketStore,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.ttlMs = config.mcp.ticketTtlSec * 1000;
  }

  async issue(principal: Principal): Promise<IssuedTicket> {
    const ticket = `mcpt_${randomBytes(32).toString('base64url')}`;
    const expiresAtMs = this.clock.nowMs() + this.ttlMs;
    await this.store.put(
      hashTicket(ticket),
      { principal: { ...principal, roles: [...principal.roles], permissions: [...principal.permissions] }, expiresAtMs },
      this.ttlMs,
    );
    return { ticket, expiresIn: this.ttlMs / 1000, expiresAt: new Date(expiresAtMs) };
  }

  /** The principal the ticket was issued to, once; undefined when unknown, used or expired. */
  async redeem(ticket: string): Promise<Principal | undefined> {
    if (!/^mcpt_[A-Za-z0-9_-]{43}$/.test(ticket)) return undefined;
    const record = await this.store.take(hashTicket(ticket));
    if (!record || record.expiresAtMs <= this.clock.nowMs()) return undefined;
    return record.principal;
  }
}

function hashTicket(ticket: string): string {
  return createHash('sha256').update(ticket, 'utf8').digest('hex');
}
