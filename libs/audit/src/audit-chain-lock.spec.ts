import type { DataSource, EntityManager } from 'typeorm';
import type { Clock } from '@app/core';
import { assertChainLockIsolation, AUDIT_CHAIN_LOCK_KEY, AuditLogRepository } from './audit-log.repository';
import type { AuditKeyring } from './audit-keyring';
import { AuditService } from './audit.service';

describe('assertChainLockIsolation', () => {
  it('accepts READ COMMITTED only', () => {
    expect(() => assertChainLockIsolation('read committed')).not.toThrow();
    for (const level of ['repeatable read', 'serializable', undefined]) {
      expect(() => assertChainLockIsolation(level)).toThrow(
        `The audit chain lock must be taken in a READ COMMITTED transaction, not ${level}`,
      );
    }
  });
});

describe('AuditService chain lock', () => {
  function managerAt(isolation: string) {
    const query = jest.fn(async (sql: string) => (sql.includes('pg_advisory_xact_lock') ? [{ isolation }] : []));
    return { manager: { queryRunner: { isTransactionActive: true }, query } as unknown as EntityManager, query };
  }
  const service = new AuditService(
    new AuditLogRepository({} as DataSource),
    { now: () => new Date('2026-01-01T00:00:00Z') } as Clock,
    {} as AuditKeyring,
  );

  it('takes the lock and reads the isolation level in the same statement, then refuses anything but READ COMMITTED', async () => {
    const { manager, query } = managerAt('repeatable read');
    await expect(service.record(manager, { action: 'test.locked', result: 'success', severity: 'info' })).rejects.toThrow(/READ COMMITTED/);
    expect(query).toHaveBeenCalledTimes(1);
    const [sql, params] = query.mock.calls[0] as unknown as [string, unknown[]];
    expect(sql).toContain("current_setting('transaction_isolation')");
    expect(params).toEqual([AUDIT_CHAIN_LOCK_KEY]);
  });
});
