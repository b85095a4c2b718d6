import type { AuditEntry, AuditService } from '@app/audit';
import type { Transaction } from '@app/database';
import type { FakeTransaction } from './in-memory-users';

/** An audit record as the fake keeps it: the entry and the transaction it was written in (null: its own). */
export interface RecordedAudit {
  entry: AuditEntry;
  tx: number | null;
}

/** AuditService's writing side, in memory. */
export class FakeAudit {
  readonly records: RecordedAudit[] = [];

  async record(tx: Transaction, entry: AuditEntry): Promise<void> {
    this.records.push({ entry, tx: (tx as unknown as FakeTransaction).id });
  }

  async recordStandalone(entry: AuditEntry): Promise<void> {
    this.records.push({ entry, tx: null });
  }

  actions(): string[] {
    return this.records.map((record) => record.entry.action);
  }

  last(action: string): RecordedAudit {
    const found = this.records.filter((record) => record.entry.action === action).pop();
    if (!found) throw new Error(`no ${action} record among ${this.actions().join(', ')}`);
    return found;
  }

  asAuditService(): AuditService {
    return this as unknown as AuditService;
  }
}
