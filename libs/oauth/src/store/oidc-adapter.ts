import type { Clock } from '@app/core';
import type { OAuthStoreRepository } from './oauth-store.repository';

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
  /** A grant is being destroyed (revocation, refresh token reuse): end what hangs on it, before the library answers. */
  grantDestroyed(grantId: string): Promise<void>;
}

/**
 * The provider library's storage on `oauth_store` (PostgreSQL or the embedded PGlite alike): one
 * class per model, as the library instantiates it with `new Adapter(name)`.
 */
export function oidcAdapterClass(store: OAuthStoreRepository, clock: Clock, hooks: AdapterHooks): new (model: string) => OidcAdapter {
  return class PostgresOidcAdapter implements OidcAdapter {
    constructor(private readonly model: string) {}

    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
      const expiresAt = expiresIn ? new Date(clock.nowMs() + expiresIn * 1000) : null;
      await store.upsert(this.model, id, payload, expiresAt);
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

    async consume(id: string): Promise<void> {
      await store.consume(this.model, id, clock.now());
    }

    async destroy(id: string): Promise<void> {
      if (this.model === 'Grant') await hooks.grantDestroyed(id);
      await store.destroy(this.model, id);
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await store.destroyByGrant(grantId, this.model);
    }
  };
}

/** The library reads `consumed` (a timestamp, truthy) off the payload. */
function withConsumed(payload: Record<string, unknown>, consumed: boolean, clock: Clock): Record<string, unknown> {
  return consumed ? { ...payload, consumed: Math.floor(clock.nowMs() / 1000) } : payload;
}
