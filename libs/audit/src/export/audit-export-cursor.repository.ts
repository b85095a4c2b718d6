import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { GENESIS_HASH } from '../audit-hash';

/** Every column of `audit_export_cursors`. */
export const AUDIT_EXPORT_CURSORS_TABLE_COLUMNS = [
  'sink',
  'last_seq',
  'last_id',
  'last_hash',
  'delivered_count',
  'last_delivered_at',
  'lease_owner',
  'lease_until',
  'updated_at',
] as const;

/** A sink's durable position: the last record it confirmed (seq 0 and the genesis hash before the first). */
export interface AuditExportCursor {
  sink: string;
  lastSeq: string;
  lastId: string | null;
  lastHash: string;
  deliveredCount: number;
  lastDeliveredAt: Date | null;
}

interface CursorRow {
  sink: string;
  last_seq: string;
  last_id: string | null;
  last_hash: string | null;
  delivered_count: string;
  last_delivered_at: Date | null;
}

const cursorOf = (row: CursorRow): AuditExportCursor => ({
  sink: row.sink,
  lastSeq: row.last_seq,
  lastId: row.last_id,
  lastHash: row.last_hash ?? GENESIS_HASH,
  deliveredCount: Number(row.delivered_count),
  lastDeliveredAt: row.last_delivered_at,
});

const RETURNED = 'sink, last_seq, last_id, last_hash, delivered_count, last_delivered_at';

// UPDATE ... RETURNING runs inside a WITH so the statement is a SELECT and TypeORM's query() answers
// its rows (for a bare UPDATE it answers [rows, rowCount]).

/**
 * The one home of `audit_export_cursors` SQL. Who exports to a sink is decided by a lease on its
 * cursor row, taken and renewed by one conditional UPDATE (the row lock serialises competing
 * replicas; the loser's WHERE is re-checked against the winner's lease and matches nothing). No
 * connection or transaction stays open while a batch is on the wire.
 */
@Injectable()
export class AuditExportCursorRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Creates the sink's cursor, before the first record, unless it exists. */
  async ensure(sink: string): Promise<void> {
    await this.dataSource.query(`INSERT INTO audit_export_cursors (sink) VALUES ($1) ON CONFLICT (sink) DO NOTHING`, [sink]);
  }

  async read(sink: string): Promise<AuditExportCursor | undefined> {
    const rows: CursorRow[] = await this.dataSource.query(`SELECT ${RETURNED} FROM audit_export_cursors WHERE sink = $1`, [sink]);
    return rows[0] ? cursorOf(rows[0]) : undefined;
  }

  /**
   * Takes (or renews) the sink's lease for `leaseMs` if it is free, expired or already `owner`'s,
   * and answers the cursor; undefined when another process holds it.
   */
  async claim(sink: string, owner: string, leaseMs: number): Promise<AuditExportCursor | undefined> {
    const rows: CursorRow[] = await this.dataSource.query(
      `WITH claimed AS (
         UPDATE audit_export_cursors
            SET lease_owner = $2, lease_until = now() + $3 * interval '1 millisecond', updated_at = now()
          WHERE sink = $1 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until < now())
          RETURNING ${RETURNED})
       SELECT * FROM claimed`,
      [sink, owner, leaseMs],
    );
    return rows[0] ? cursorOf(rows[0]) : undefined;
  }

  /**
   * Moves the cursor from `fromSeq` to the last delivered record and renews the lease; false
   * (nothing changed) when the lease is no longer `owner`'s or the cursor moved meanwhile.
   */
  async advance(
    sink: string,
    owner: string,
    fromSeq: string,
    to: { seq: string; id: string; hash: string; count: number },
    leaseMs: number,
  ): Promise<boolean> {
    const rows: unknown[] = await this.dataSource.query(
      `WITH advanced AS (
         UPDATE audit_export_cursors
            SET last_seq = $4, last_id = $5, last_hash = $6, delivered_count = delivered_count + $7,
                last_delivered_at = now(), lease_until = now() + $8 * interval '1 millisecond', updated_at = now()
          WHERE sink = $1 AND lease_owner = $2 AND last_seq = $3
          RETURNING sink)
       SELECT sink FROM advanced`,
      [sink, owner, fromSeq, to.seq, to.id, to.hash, to.count, leaseMs],
    );
    return rows.length > 0;
  }

  /** Gives the lease up (at shutdown), so the next process resumes at once instead of after it expires. */
  async release(sink: string, owner: string): Promise<void> {
    await this.dataSource.query(
      `UPDATE audit_export_cursors SET lease_owner = NULL, lease_until = NULL, updated_at = now() WHERE sink = $1 AND lease_owner = $2`,
      [sink, owner],
    );
  }

  /** Committed audit records after the position: the sink's lag. */
  async recordsAfter(seq: string): Promise<number> {
    const [row]: Array<{ lag: string }> = await this.dataSource.query(`SELECT count(*) AS lag FROM audit_logs WHERE seq > $1`, [seq]);
    return Number(row.lag);
  }
}
