import type { DataSource } from 'typeorm';
import { AUDIT_CHAIN_LOCK_KEY, AUDIT_INSERT_LINKED_SQL, auditInsertRow, auditLinkedInsertParams, AuditRowContent } from '@app/audit';

/**
 * Another replica appending one record to the audit chain: its own chain lock and head read, on
 * a connection of its own, so this process's idea of the head is stale afterwards.
 */
export async function appendAsAnotherReplica(dataSource: DataSource, macKey: Buffer, action: string): Promise<void> {
  await dataSource.transaction(async (manager) => {
    await manager.query(`SELECT pg_advisory_xact_lock($1)`, [AUDIT_CHAIN_LOCK_KEY]);
    const [head] = await manager.query(`SELECT hash FROM audit_logs ORDER BY seq DESC LIMIT 1`);
    const content: AuditRowContent = {
      id: `aud_replica${Date.now()}`,
      timestamp: new Date().toISOString(),
      userId: null,
      action,
      resource: null,
      details: {},
      result: 'success',
      ipAddress: null,
      userAgent: null,
      severity: 'info',
      metadata: {},
    };
    await manager.query(AUDIT_INSERT_LINKED_SQL, auditLinkedInsertParams([auditInsertRow(content, head.hash, macKey)], head.hash));
  });
}
