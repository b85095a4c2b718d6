import { Injectable, Logger } from '@nestjs/common';
import { RedisConnection } from '@app/redis';
import { CredentialCipher } from './credential-cipher';

/** An exchanged token as replicas share it. */
export interface SharedExchanged {
  secret: string;
  version: number;
  expiresAtMs: number;
}

/** How long one replica may hold the right to exchange for a key before another may try. */
const LOCK_MS = 10_000;
/** How long a replica that lost the race waits for the winner's token before exchanging itself. */
const WAIT_MS = 5_000;
const POLL_MS = 50;

/**
 * Exchanged upstream tokens shared between replicas through Redis (issue 17), so a user's token
 * is exchanged once for the deployment rather than once per replica. Values are sealed with the
 * credential cipher (ENCRYPTION_KEY, associated data user + upstream): Redis never holds a
 * plaintext token. Keys name the upstream, the user and the subject token's fingerprint; they
 * expire with the token (minus the margin the caller asks for). One exchange at a time per key:
 * a SET NX lock; the others wait briefly for its result. Without Redis every method is a no-op
 * and each replica exchanges for itself, as before.
 */
@Injectable()
export class SharedExchangeCache {
  private readonly logger = new Logger(SharedExchangeCache.name);

  constructor(
    private readonly redis: RedisConnection,
    private readonly cipher: CredentialCipher,
  ) {}

  get enabled(): boolean {
    return this.redis.enabled;
  }

  async get(key: string, userId: string, upstream: string): Promise<SharedExchanged | undefined> {
    if (!this.redis.enabled) return undefined;
    try {
      const sealed = await this.redis.run((client) => client.get(this.redis.key('uxc', key)));
      if (!sealed) return undefined;
      return JSON.parse(this.cipher.open(sealed, userId, upstream).plaintext) as SharedExchanged;
    } catch (error) {
      this.logger.debug({ upstream, userId, reason: (error as Error).message }, 'Shared exchanged token not read');
      return undefined;
    }
  }

  async set(key: string, userId: string, upstream: string, value: SharedExchanged, ttlMs: number): Promise<void> {
    if (!this.redis.enabled || ttlMs <= 0) return;
    const sealed = this.cipher.seal(JSON.stringify(value), userId, upstream);
    await this.redis
      .run((client) => client.set(this.redis.key('uxc', key), sealed, 'PX', ttlMs))
      .catch((error: unknown) => this.logger.debug({ upstream, reason: (error as Error).message }, 'Shared exchanged token not written'));
  }

  /** True when this replica may exchange for `key` now (or Redis cannot say). */
  async claim(key: string): Promise<boolean> {
    if (!this.redis.enabled) return true;
    try {
      return (await this.redis.run((client) => client.set(this.redis.key('uxc-lock', key), '1', 'PX', LOCK_MS, 'NX'))) === 'OK';
    } catch {
      return true;
    }
  }

  async release(key: string): Promise<void> {
    if (!this.redis.enabled) return;
    await this.redis.run((client) => client.del(this.redis.key('uxc-lock', key))).catch(() => undefined);
  }

  /** The winner's token, waited for at most WAIT_MS. */
  async await(key: string, userId: string, upstream: string): Promise<SharedExchanged | undefined> {
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline) {
      const found = await this.get(key, userId, upstream);
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    return undefined;
  }

  /** Deletes every shared token of the user for the upstream (suspension, a refused token). */
  async forget(userId: string, upstream: string, keys: string[]): Promise<void> {
    if (!this.redis.enabled || keys.length === 0) return;
    await this.redis
      .run((client) => client.del(...keys.map((key) => this.redis.key('uxc', key))))
      .catch((error: unknown) =>
        this.logger.debug({ upstream, userId, reason: (error as Error).message }, 'Shared exchanged tokens not deleted'),
      );
  }
}
