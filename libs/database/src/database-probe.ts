import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/**
 * Whether the application's pool reaches a database that answers: infrastructure, not a table's
 * data, so it lives here rather than in a repository. (PostgresHeartbeat probes on a connection
 * of its own; this goes through the pool, as requests do.)
 */
@Injectable()
export class DatabaseProbe {
  constructor(private readonly dataSource: DataSource) {}

  /** Resolves once `SELECT 1` is answered through the pool; rejects with the driver's error. */
  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }
}
