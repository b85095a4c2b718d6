import { Logger } from '@nestjs/common';

/**
 * Thrown at once, without touching PostgreSQL, while the breaker is open. Its code is
 * connection_failure, which the exception filter answers with 503 `SERVICE_UNAVAILABLE` and
 * `Retry-After`, like any other unreachable database.
 */
export class PostgresUnavailableError extends Error {
  readonly code = '08006';

  constructor(reason: string) {
    super(`PostgreSQL unavailable: ${reason}`);
    this.name = 'PostgresUnavailableError';
  }
}

/** A pool connection the breaker drops when it opens (its socket, destroyed). */
export interface BreakerConnection {
  drop(): void;
}

/**
 * Whether this process trusts the PostgreSQL server (networked PostgreSQL only; the embedded one
 * cannot go silent). A silent server answers nothing, so outcomes decide: a connection attempt
 * that fails without an answer, a query past its deadline or an unanswered heartbeat opens it.
 * While it is open every query and connection attempt fails at once, and the connections it
 * tracks are dropped on opening, so requests stuck on a silent server are released and no
 * black-holed socket is reused afterwards; PostgreSQL rolls back whatever they had open. Only an
 * answered heartbeat closes it. The hot path reads `isOpen`, one boolean.
 */
export class PostgresBreaker {
  private readonly logger = new Logger('PostgresBreaker');
  private opened = false;
  private reason = '';
  private closedAtMs = 0;
  private readonly connections = new Set<BreakerConnection>();

  constructor(private readonly now: () => number = Date.now) {}

  get isOpen(): boolean {
    return this.opened;
  }

  get openReason(): string | undefined {
    return this.opened ? this.reason : undefined;
  }

  unavailable(): PostgresUnavailableError {
    return new PostgresUnavailableError(this.reason);
  }

  /** Tracks a live connection until the returned function is called. */
  track(connection: BreakerConnection): () => void {
    this.connections.add(connection);
    return () => this.connections.delete(connection);
  }

  /**
   * Something sent at `sentAtMs` got no answer. Ignored when it was sent before the breaker last
   * closed: it says nothing about the server since then.
   */
  failed(reason: string, sentAtMs = this.now()): void {
    if (this.opened || sentAtMs < this.closedAtMs) return;
    this.opened = true;
    this.reason = reason;
    this.logger.warn({ reason }, 'PostgreSQL unavailable; queries fail at once with 503 until a heartbeat is answered');
    const dropping = [...this.connections];
    this.connections.clear();
    for (const connection of dropping) connection.drop();
  }

  /** A heartbeat was answered on a fresh connection: the server is back. */
  proven(): void {
    if (!this.opened) return;
    this.opened = false;
    this.closedAtMs = this.now();
    this.logger.log('PostgreSQL answers again');
  }
}
