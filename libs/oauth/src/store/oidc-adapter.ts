import type { Clock } from '@app/core';
import type { Transaction } from '@app/database';
import type { OAuthStoreRepository } from './oauth-store.repository';
import { AlreadyConsumed, DeferredWrite, OAuthWriteScope } from './oauth-write-scope';

/** The adapter contract of oidc-provider (one instance per model name). */
export interface OidcAdapter {
  upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void>;
  find(id: string): Promise<Record<string, unknown> | undefined>;
  findByUserCode(userCode: string): Promise<Record<string, unknown> | undefined>;
  findByUid(uid: string): Promise<Record<string, unknown> | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

export interface AdapterHooks {
  /** A grant is being destroyed (revocation, refresh token reuse): end what hangs on it, in the same transaction. */
  grantDestroyed(grantId: string, tx: Transaction): Promise<void>;
}

/**
 * The provider library's storage on `oauth_store` (PostgreSQL or the embedded PGlite alike): one
 * class per model, as the library instantiates it with `new Adapter(name)`. Inside a request the
 * OAuthWriteScope collects (token, revocation, registration), writes are noted and committed with
 * their audit records by the request's middleware; elsewhere each write runs at once (in a
 * transaction of its own when it has several statements).
 */
export function oidcAdapterClass(
  store: OAuthStoreRepository,
  clock: Clock,
  hooks: AdapterHooks,
  scope: OAuthWriteScope,
  run: (write: DeferredWrite) => Promise<void>,
): new (model: string) => OidcAdapter {
  /** Notes the write in the request's scope, or runs it now. */
  const write = (work: DeferredWrite): Promise<void> => {
    const collected = scope.current();
    if (!collected) return run(work);
    collected.writes.push(work);
    return Promise.resolve();
  };

  return class PostgresOidcAdapter implements OidcAdapter {
    constructor(private readonly model: string) {}

    upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
      const expiresAt = expiresIn ? new Date(clock.nowMs() + expiresIn * 1000) : null;
      return write((tx) => store.upsert(this.model, id, payload, expiresAt, tx));
    }

    async find(id: string): Promise<Record<string, unknown> | undefined> {
      const found = await store.find(this.model, id, clock.now());
      return found && withConsumed(found.payload, found.consumed, clock);
    }

    async findByUserCode(): Promise<undefined> {
      // The device flow is not enabled.
      return undefined;
    }

    async findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
      const found = await store.findByUid(this.model, uid, clock.now());
      return found && withConsumed(found.payload, found.consumed, clock);
    }

    /**
     * A code or refresh token is consumed once: in a collected request, a second request that read
     * it unconsumed (a concurrent replay) fails at commit and issues nothing.
     */
    consume(id: string): Promise<void> {
      const now = clock.now();
      const once = scope.current() !== undefined;
      return write(async (tx) => {
        if (!(await store.consume(this.model, id, now, tx)) && once) throw new AlreadyConsumed(this.model);
      });
    }

    destroy(id: string): Promise<void> {
      const collected = scope.current();
      if (this.model === 'Grant' && collected) {
        // The grant's session ends after the request's audit records (OAuthWrites.endings).
        collected.endings.push((tx) => hooks.grantDestroyed(id, tx));
        return write((tx) => store.destroy(this.model, id, tx));
      }
      return write(async (tx) => {
        if (this.model === 'Grant') await hooks.grantDestroyed(id, tx);
        await store.destroy(this.model, id, tx);
      });
    }

    revokeByGrantId(grantId: string): Promise<void> {
      return write((tx) => store.destroyByGrant(grantId, this.model, tx));
    }
  };
}

/** The library reads `consumed` (a timestamp, truthy) off the payload. */
function withConsumed(payload: Record<string, unknown>, consumed: boolean, clock: Clock): Record<string, unknown> {
  return consumed ? { ...payload, consumed: Math.floor(clock.nowMs() / 1000) } : payload;
}
