import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { PostgresBreaker } from './postgres-breaker';

/**
 * Whether the application's pool reaches a database that answers: infrastructure, not a table's
 * data, so it lives here rather than in a repository. (PostgresHeartbeat probes on a connection
 * of its own; this goes through the pool, as requests do.)
 */
@Injectable()
export class DatabaseProbe {
  constructor(
    private readonly dataSource: DataSource,
    private readonly breaker: PostgresBreaker,
  ) {}

  /** Whether the outage breaker is open: queries fail at once (503) until a heartbeat is answered. */
  get breakerOpen(): boolean {
    return this.breaker.isOpen;
  }

  /** Resolves once `SELECT 1` is answered through the pool; rejects with the driver's error. */
  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }
}
