import { Logger as NestLogger } from '@nestjs/common';
import type { Logger, QueryRunner } from 'typeorm';
import { safeErrorMessage } from '@app/core';

const UNIQUE_VIOLATION = '23505';

function sqlState(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { code?: unknown; driverError?: { code?: unknown } };
  const code = e.code ?? e.driverError?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Sends TypeORM's own messages through the application logger (structured, redacted) instead
 * of the console. Query text and parameters are never logged: parameters hold user data (a
 * failing INSERT into users carries a bcrypt hash).
 */
export class TypeOrmLogger implements Logger {
  private readonly logger = new NestLogger('TypeORM');

  logQuery(): void {}

  logQueryError(error: string | Error, _query: string, _parameters?: unknown[], _runner?: QueryRunner): void {
    // Never the query or its parameters, and the message with quoted values masked. A unique
    // violation is an expected answer (an email taken: 409), not a fault: debug only.
    const message = `Query failed: ${safeErrorMessage(error)}`;
    if (sqlState(error) === UNIQUE_VIOLATION) this.logger.debug(message);
    else this.logger.warn(message);
  }

  logQuerySlow(time: number): void {
    this.logger.warn(`Slow query: ${time} ms`);
  }

  logSchemaBuild(message: string): void {
    this.logger.log(message);
  }

  logMigration(message: string): void {
    this.logger.log(message);
  }

  log(level: 'log' | 'info' | 'warn', message: unknown): void {
    const text = message instanceof Error ? message.message : String(message);
    if (level === 'warn') this.logger.warn(text);
    else this.logger.log(text);
  }
}
