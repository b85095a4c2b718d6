import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import Redis, { RedisOptions } from 'ioredis';
import { APP_CONFIG, AppConfig } from '@app/core';

/** `disabled`: no REDIS_URL, every shared concern uses its in-process equivalent. */
export type RedisState = 'up' | 'down' | 'disabled';

/** How long boot waits for the first connection before going on without it (degraded). */
const BOOT_WAIT_MS = 3_000;
/** A command that has not been answered by then fails (a hung Redis must not hang requests). */
const COMMAND_TIMEOUT_MS = 1_000;
const CONNECT_TIMEOUT_MS = 2_000;
/** Reconnect delays grow to this and stay there: replicas keep trying, but never hammer Redis. */
const MAX_RECONNECT_DELAY_MS = 2_000;

/**
 * The two Redis connections of this process, when REDIS_URL is set: one for commands (fails
 * fast while Redis is away: no offline queue, one retry) and one for pub/sub (SUBSCRIBE blocks
 * a connection). Both connect at boot without holding it up for long, and reconnect forever
 * with a bounded delay. The URL is never logged (it may carry a password).
 */
@Injectable()
export class RedisConnection implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RedisConnection.name);
  readonly enabled: boolean;
  readonly keyPrefix: string;
  private commandClient: Redis | undefined;
  private subscriberClient: Redis | undefined;
  private closing = false;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.enabled = config.redisUrl !== undefined;
    this.keyPrefix = config.redisKeyPrefix;
  }

  /** The command connection (created on first use). Only call when `enabled`. */
  get commands(): Redis {
    this.commandClient ??= this.create('commands', { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: COMMAND_TIMEOUT_MS });
    return this.commandClient;
  }

  /** The pub/sub connection (created on first use); SUBSCRIBE waits for it while it reconnects. */
  get subscriber(): Redis {
    this.subscriberClient ??= this.create('subscriber', { enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: false });
    return this.subscriberClient;
  }

  /** A key (or channel) under this deployment's prefix. */
  key(...parts: string[]): string {
    return `${this.keyPrefix}${parts.join(':')}`;
  }

  state(): RedisState {
    if (!this.enabled) return 'disabled';
    return this.commandClient?.status === 'ready' && this.subscriberClient?.status === 'ready' ? 'up' : 'down';
  }

  async onModuleInit(): Promise<void> {
    if (!this.enabled) return;
    const connections = [this.commands, this.subscriber].map((client) => client.connect().catch(() => undefined));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, BOOT_WAIT_MS)));
    await Promise.race([Promise.all(connections), timeout]);
    clearTimeout(timer);
    if (this.state() !== 'up') this.logger.warn('Redis is not reachable; starting degraded (per-process state) and reconnecting in the background');
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    await Promise.all(
      [this.commandClient, this.subscriberClient].map(async (client) => {
        if (!client) return;
        try {
          if (client.status === 'ready') await client.quit();
          else client.disconnect();
        } catch {
          client.disconnect();
        }
      }),
    );
  }

  private create(role: string, options: RedisOptions): Redis {
    const client = new Redis(this.config.redisUrl as string, {
      ...options,
      lazyConnect: true,
      connectTimeout: CONNECT_TIMEOUT_MS,
      connectionName: `secure-mcp-server:${role}`,
      retryStrategy: (attempt) => (this.closing ? null : Math.min(100 * 2 ** Math.min(attempt, 5), MAX_RECONNECT_DELAY_MS)),
    });
    // Log transitions, not every failed reconnect attempt.
    let down = false;
    client.on('ready', () => {
      if (down) this.logger.log({ connection: role }, 'Redis connection restored');
      down = false;
    });
    client.on('error', (error: Error) => {
      if (down || this.closing) return;
      down = true;
      this.logger.warn({ connection: role, err: { message: error.message } }, 'Redis connection lost; reconnecting');
    });
    client.on('close', () => {
      if (down || this.closing) return;
      down = true;
      this.logger.warn({ connection: role }, 'Redis connection closed; reconnecting');
    });
    return client;
  }
}
