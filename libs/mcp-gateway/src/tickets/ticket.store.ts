import { Injectable } from '@nestjs/common';
import type { Principal } from '@app/core';

/** What a ticket stands for: the caller who asked for it, as authenticated then. */
export interface TicketRecord {
  principal: Principal;
  expiresAtMs: number;
}

/**
 * Where WebSocket tickets live, keyed by the SHA-256 of the ticket (the ticket itself is never
 * stored). `take` must be atomic, so a ticket works once even with several replicas: a Redis
 * implementation uses GETDEL (or GET+DEL in MULTI) and a TTL of the ticket's lifetime.
 */
export abstract class TicketStore {
  abstract put(hash: string, record: TicketRecord, ttlMs: number): Promise<void>;
  /** Removes and returns the record (undefined when unknown or already used). */
  abstract take(hash: string): Promise<TicketRecord | undefined>;
}

/** Upper bound on live tickets per process; each lives for seconds, so this is never reached in normal use. */
const MAX_TICKETS = 100_000;

@Injectable()
export class InMemoryTicketStore extends TicketStore {
  private readonly records = new Map<string, TicketRecord>();

  async put(hash: string, record: TicketRecord): Promise<void> {
    if (this.records.size >= MAX_TICKETS) this.prune(Date.now());
    if (this.records.size >= MAX_TICKETS) this.records.delete(this.records.keys().next().value as string);
    this.records.set(hash, record);
  }

  async take(hash: string): Promise<TicketRecord | undefined> {
    const record = this.records.get(hash);
    this.records.delete(hash);
    return record;
  }

  private prune(nowMs: number): void {
    for (const [hash, record] of this.records) if (record.expiresAtMs <= nowMs) this.records.delete(hash);
  }
}
