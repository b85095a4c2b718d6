import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Client } from 'pg';
import { APP_CONFIG, AppConfig, BackgroundJob, BackgroundJobs } from '@app/core';
import { PostgresBreaker } from './postgres-breaker';
import { dropConnection, unanswered } from './query-deadline.client';

/**
 * Proves, on a connection of its own (so a pool busy with slow but healthy queries cannot make it
 * wait), that the networked PostgreSQL answers: `SELECT 1` every DATABASE_HEARTBEAT_MS. No answer
 * within DATABASE_PROBE_TIMEOUT_MS opens the breaker (a silent server is noticed even with no
 * traffic) and replaces the connection, since a half-open socket never answers again; an answer
 * closes it. Off for the embedded database.
 */
@Injectable()
export class PostgresHeartbeat implements OnApplicationBootstrap, OnApplicationShutdown {
  private client: Client | undefined;
  private connecting: Promise<void> = Promise.resolve();
  private timer: BackgroundJob | undefined;
  private probing: Promise<void> | undefined;
  private closing = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly breaker: PostgresBreaker,
    private readonly jobs: BackgroundJobs,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.database.url) return;
    this.timer = this.jobs.every('database.heartbeat', this.config.database.heartbeatMs, () => this.probe());
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing = true;
    this.timer?.stop();
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  /** One probe at a time. */
  probe(): Promise<void> {
    this.probing ??= this.probeOnce().finally(() => (this.probing = undefined));
    return this.probing;
  }

  private async probeOnce(): Promise<void> {
    const sentAtMs = Date.now();
    const failure = await this.selectOne();
    if (this.closing || failure === null) return;
    if (failure === undefined) this.breaker.proven();
    else this.breaker.failed(failure, sentAtMs);
  }

  /**
   * Undefined when answered in time, else why not. Null when the server answered with an error
   * (too many connections, starting up): it is there, but that proves no query would work.
   */
  private async selectOne(): Promise<string | undefined | null> {
    const client = this.client ?? this.open();
    const { probeTimeoutMs } = this.config.database;
    const attempt = this.connecting.then(() => client.query('SELECT 1'));
    attempt.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    // setImmediate: after a stalled event loop the timer runs before pending socket reads; let them go first.
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => setImmediate(() => resolve('timeout')), probeTimeoutMs)));
    try {
      if ((await Promise.race([attempt, timeout])) !== 'timeout') return undefined;
      this.discard(client);
      return `no answer to the heartbeat within ${probeTimeoutMs} ms`;
    } catch (error) {
      this.discard(client);
      if (!unanswered(error)) return null;
      return `heartbeat failed: ${(error as Error).message}`;
    } finally {
      clearTimeout(timer);
    }
  }

  private open(): Client {
    const client = new Client({
      connectionString: this.config.database.url,
      ssl: this.config.database.ssl ? { rejectUnauthorized: true } : false,
      application_name: 'secure-mcp-server heartbeat',
    });
    // Errors surface through the probe; without a listener an idle socket's error would crash the process.
    client.on('error', () => this.discard(client));
    this.client = client;
    this.connecting = client.connect().then(() => undefined);
    return client;
  }

  private discard(client: Client): void {
    if (this.client === client) this.client = undefined;
    dropConnection(client);
  }
}
