import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type Redis from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { APP_CONFIG, AppConfig, BackgroundJob, BackgroundJobs } from '@app/core';
import { traceRedisClient } from '@app/telemetry';
import { isRedisOutage, RedisBreaker } from './redis-breaker';

/** `disabled`: no REDIS_URL, every shared concern uses its in-process equivalent. */
export type RedisState = 'up' | 'down' | 'disabled';

/** How long boot waits for the first connection before going on without it (degraded). */
const BOOT_WAIT_MS = 3_000;
const CONNECT_TIMEOUT_MS = 2_000;
/** Reconnect delays grow to this and stay there: replicas keep trying, but never hammer Redis. */
const MAX_RECONNECT_DELAY_MS = 2_000;

/**
 * The two Redis connections of this process, when REDIS_URL is set: one for commands (no offline
 * queue, one retry, REDIS_COMMAND_TIMEOUT_MS) and one for pub/sub (SUBSCRIBE blocks a connection).
 *
 * One breaker guards both for every Redis user. A socket event alone cannot tell a silent Redis
 * (a partition, a stuck node) from a healthy one, so outcomes decide: a command that fails without
 * a reply (a timeout counts) or a heartbeat PING on either connection left unanswered opens it,
 * and while it is open `run` throws at once, so callers fall back without waiting. Only PINGs
 * answered on both connections close it again. The URL is never logged (it may carry a password).
 */
@Injectable()
export class RedisConnection implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RedisConnection.name);
  readonly enabled: boolean;
  readonly keyPrefix: string;
  readonly breaker = new RedisBreaker();
  /**
   * How long an answered subscriber PING vouches that no announcement was missed: one heartbeat
   * plus its timeout. A replica that publishes while Redis is away waits this long before it
   * answers, so that by then every replica cut off from Redis too distrusts its caches.
   */
  readonly trustWindowMs: number;
  private readonly timeouts: AppConfig['redisBreaker'];
  private commandClient: Redis | undefined;
  private subscriberClient: Redis | undefined;
  private closing = false;
  private heartbeat: BackgroundJob | undefined;
  private probing: Promise<void> | undefined;
  /** Send time of the last PING the subscriber connection answered. */
  private subscriberProvenAtMs = 0;
  private latencyMs: number | undefined;
  /** When each connection's socket connected (its handshake may then hang on a silent Redis). */
  private readonly connectedAtMs = new Map<Redis, number>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly jobs: BackgroundJobs = new BackgroundJobs(),
  ) {
    this.enabled = config.redisUrl !== undefined;
    this.keyPrefix = config.redisKeyPrefix;
    this.timeouts = config.redisBreaker;
    this.trustWindowMs = this.timeouts.heartbeatMs + this.timeouts.probeTimeoutMs;
    this.breaker.onChange((open) => {
      if (this.closing) return;
      if (open)
        this.logger.warn(
          { reason: this.breaker.openReason },
          'Redis unavailable; every replica-shared concern falls back until it answers again',
        );
      else this.logger.log('Redis answers again on both connections');
    });
  }

  /** The command connection (created on first use). Prefer `run`, which goes through the breaker. */
  get commands(): Redis {
    this.commandClient ??= this.create('commands', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: this.timeouts.commandTimeoutMs,
    });
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
    return this.breaker.isOpen ? 'down' : 'up';
  }

  /** Round trip of the last answered heartbeat on the command connection. */
  get lastLatencyMs(): number | undefined {
    return this.latencyMs;
  }

  /**
   * Runs one operation on the command connection. While the breaker is open it throws
   * RedisUnavailableError without touching Redis; a failure without a reply opens the breaker.
   */
  async run<T>(operation: (client: Redis) => Promise<T>): Promise<T> {
    this.breaker.check();
    const sentAtMs = Date.now();
    try {
      return await operation(this.commands);
    } catch (error) {
      if (isRedisOutage(error)) this.breaker.failed(reasonOf(error), sentAtMs);
      throw error;
    }
  }

  /**
   * True while this replica has proof that it hears every announcement: the breaker is closed
   * and the subscriber answered a PING sent within the trust window.
   */
  get hearsEverything(): boolean {
    return !this.breaker.isOpen && this.subscriberClient?.status === 'ready' && Date.now() - this.subscriberProvenAtMs < this.trustWindowMs;
  }

  /**
   * For an announcement that could not be published: resolves once every replica that lost Redis
   * no later than this one has stopped trusting its caches (their proofs have run out).
   */
  async untilPeersDistrust(): Promise<void> {
    const since = this.breaker.outageSinceMs;
    if (since === undefined) return;
    const wait = since + this.trustWindowMs - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  async onModuleInit(): Promise<void> {
    if (!this.enabled) return;
    const connections = [this.commands, this.subscriber].map((client) => client.connect().catch(() => undefined));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, BOOT_WAIT_MS)));
    await Promise.race([Promise.all(connections), timeout]);
    clearTimeout(timer);
    await this.probe();
    this.heartbeat = this.jobs.every('redis.heartbeat', this.timeouts.heartbeatMs, () => this.probe());
    if (this.breaker.isOpen)
      this.logger.warn('Redis is not reachable; starting degraded (per-process state) and reconnecting in the background');
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    this.heartbeat?.stop();
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

  /** PINGs both connections; one probe at a time. */
  private probe(): Promise<void> {
    this.probing ??= this.probeBoth().finally(() => (this.probing = undefined));
    return this.probing;
  }

  private async probeBoth(): Promise<void> {
    if (this.closing) return;
    const sentAtMs = Date.now();
    const [commands, subscriber] = await Promise.all([this.ping(this.commands), this.ping(this.subscriber)]);
    if (typeof subscriber === 'number') this.subscriberProvenAtMs = sentAtMs;
    if (typeof commands === 'number') this.latencyMs = commands;
    if (typeof commands === 'number' && typeof subscriber === 'number') this.breaker.proven();
    else this.breaker.failed(typeof commands === 'string' ? `commands: ${commands}` : `subscriber: ${subscriber as string}`, sentAtMs);
  }

  /** The round trip in ms, or why there was none. A connection that stopped answering is replaced. */
  private async ping(client: Redis): Promise<number | string> {
    if (client.status === 'connect' && Date.now() - (this.connectedAtMs.get(client) ?? 0) > this.timeouts.probeTimeoutMs) {
      // Connected but its handshake is not answered: a silent Redis. Start over.
      replace(client);
      return 'no answer to the connection handshake';
    }
    if (client.status !== 'ready') return `connection ${client.status}`;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    // setImmediate: after a stalled event loop the timer runs before pending socket reads; let them go first.
    const timeout = new Promise<'timeout'>(
      (resolve) => (timer = setTimeout(() => setImmediate(() => resolve('timeout')), this.timeouts.probeTimeoutMs)),
    );
    let failure = `no answer to PING within ${this.timeouts.probeTimeoutMs} ms`;
    try {
      const answer = await Promise.race([client.ping(), timeout]);
      if (answer !== 'timeout') return Math.round((performance.now() - started) * 100) / 100;
    } catch (error) {
      failure = reasonOf(error);
    } finally {
      clearTimeout(timer);
    }
    // A half-open socket never answers again (its command timeout included); a fresh one will once Redis does.
    if (client.status === 'ready') replace(client);
    return failure;
  }

  private create(role: string, options: RedisOptions): Redis {
    const client = new (ioredis())(this.config.redisUrl as string, {
      ...options,
      lazyConnect: true,
      connectTimeout: CONNECT_TIMEOUT_MS,
      connectionName: `secure-mcp-server:${role}`,
      retryStrategy: (attempt) => (this.closing ? null : Math.min(100 * 2 ** Math.min(attempt, 5), MAX_RECONNECT_DELAY_MS)),
    });
    traceRedisClient(client as unknown as Parameters<typeof traceRedisClient>[0]);
    client.on('connect', () => this.connectedAtMs.set(client, Date.now()));
    // Proof is still needed to close the breaker: probe at once rather than at the next heartbeat.
    client.on('ready', () => {
      if (this.breaker.isOpen && this.heartbeat) void this.probe();
    });
    // Socket events only ever open the breaker (a refused or reset connection is an outage).
    client.on('error', (error: Error) => this.breaker.failed(`${role}: ${reasonOf(error)}`));
    client.on('close', () => this.breaker.failed(`${role}: connection closed`));
    return client;
  }
}

/**
 * Drops the socket at once and lets ioredis reconnect (with its back-off). Not `disconnect(true)`:
 * that ends the socket gracefully, which on a silent network waits for TCP to give up.
 */
function replace(client: Redis): void {
  client.stream.destroy();
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * ioredis, loaded when the first connection is made: a start without REDIS_URL (the default) does
 * not pay for loading it (issue 18, P8: about 75 ms of a 2-core machine's start).
 */
function ioredis(): typeof Redis {
  return (require('ioredis') as typeof import('ioredis')).default;
}
