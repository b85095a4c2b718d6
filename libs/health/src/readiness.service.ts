import { Injectable } from '@nestjs/common';
import { DatabaseProbe, MigrationService } from '@app/database';
import { withTimeout } from '@app/core';

const PING_TIMEOUT_MS = 1_000;

/** Ready = not shutting down, schema current, database answering (within a second). */
@Injectable()
export class ReadinessService {
  private shuttingDown = false;

  constructor(
    private readonly database: DatabaseProbe,
    private readonly migrations: MigrationService,
  ) {}

  /** Flips readiness to 503 at once so load balancers stop sending traffic. */
  beginShutdown(): void {
    this.shuttingDown = true;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  async isReady(): Promise<boolean> {
    if (this.shuttingDown) return false;
    try {
      await withTimeout(this.database.ping(), PING_TIMEOUT_MS);
      const current = await withTimeout(this.migrations.isCurrent(), PING_TIMEOUT_MS);
      // A check that began before SIGTERM must not answer "ready" after it.
      return current && !this.shuttingDown;
    } catch {
      return false;
    }
  }
}
