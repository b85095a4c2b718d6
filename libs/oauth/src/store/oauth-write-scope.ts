import { AsyncLocalStorage } from 'node:async_hooks';
import type { AuditEntry } from '@app/audit';
import type { Transaction } from '@app/database';

/** A write to replay inside the request's transaction. */
export type DeferredWrite = (tx: Transaction) => Promise<void>;

/** A code or refresh token another request consumed first (between this request's read and its commit). */
export class AlreadyConsumed extends Error {
  constructor(readonly model: string) {
    super(`${model} already consumed`);
    this.name = 'AlreadyConsumed';
  }
}

/** What one token, revocation or registration request changes: its store writes and their audit records. */
export interface OAuthWrites {
  writes: DeferredWrite[];
  audits: AuditEntry[];
  /**
   * Grants ended (revocation, reuse, code replay): run after the audit records, because ending a
   * grant's session denies it at once, before the commit; a refused record must fail before that.
   */
  endings: DeferredWrite[];
}

/**
 * The provider library writes its artefacts (a consumed code, a rotated refresh token, a revoked
 * grant) through the adapter while it handles a request, and reports token issue and reuse in
 * events. Inside a request run in `collect`, the adapter and the event listeners only note what
 * they would write; the request's middleware then commits every write and every audit record in
 * one transaction before the answer leaves (or none of them, and the client gets an OAuth error).
 * Reads stay outside that transaction (the embedded database has a single connection, and the
 * transaction is held only for the writes).
 */
export class OAuthWriteScope {
  private readonly storage = new AsyncLocalStorage<OAuthWrites>();

  collect<T>(work: () => Promise<T>): { writes: OAuthWrites; done: Promise<T> } {
    const writes: OAuthWrites = { writes: [], audits: [], endings: [] };
    return { writes, done: this.storage.run(writes, work) };
  }

  /** The current request's writes, if it runs in `collect`. */
  current(): OAuthWrites | undefined {
    return this.storage.getStore();
  }
}
