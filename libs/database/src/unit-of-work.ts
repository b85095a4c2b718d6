import { Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';

/**
 * An open transaction. Repositories run their SQL on it; services only pass it along (to
 * repositories and to AuditService.record), so a change and its audit record commit together.
 */
export type Transaction = EntityManager;

/** Opens transactions for services, which never hold the DataSource themselves. */
@Injectable()
export class UnitOfWork {
  constructor(private readonly dataSource: DataSource) {}

  /** Runs `work` in one READ COMMITTED transaction: commits when it resolves, rolls back when it throws. */
  run<T>(work: (tx: Transaction) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(work);
  }
}
