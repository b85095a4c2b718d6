import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { returnedRows } from '@app/database';
import type { DefinitionFinding } from './definition-screen';
import type { PinnableEntry, PinnedDefinition } from './upstream-tool-definition';

/** Serialises pin changes across replicas (arbitrary constant, unique to this purpose). */
const PIN_LOCK_KEY = '7301846225190473318';

export type PinStatus = 'approved' | 'pending';

/** What the gateway trusts for one upstream tool, and what the upstream offers now. */
export interface ToolPin {
  toolId: string;
  upstream: string;
  upstreamTool: string;
  /**
   * The definition calls are allowed under: first seen (trust on first use) or approved by an
   * admin. Null while a definition flagged on first sight awaits its first approval.
   */
  approvedHash: string | null;
  approvedDefinition: PinnedDefinition | null;
  /** The definition the upstream offered when last listed; differs from the approved one while pending. */
  offeredHash: string;
  offeredDefinition: PinnedDefinition;
  status: PinStatus;
  firstSeenAt: Date;
  changedAt: Date | null;
  approvedAt: Date | null;
  /** The administrator who approved; null for the first-seen pin. */
  approvedBy: string | null;
  /** What the screen found in the offered definition (see definition-screen.ts); empty when clean. */
  findings: DefinitionFinding[];
}

/** An `upstream_tool_pins` row as the driver returns it. */
interface PinRow {
  tool_id: string;
  upstream: string;
  upstream_tool: string;
  approved_hash: string | null;
  approved_definition: PinnedDefinition | null;
  offered_hash: string;
  offered_definition: PinnedDefinition;
  status: PinStatus;
  first_seen_at: Date;
  changed_at: Date | null;
  approved_at: Date | null;
  approved_by: string | null;
  findings: DefinitionFinding[] | null;
}

/** Every column of `upstream_tool_pins`, in the order rows are read. */
export const UPSTREAM_TOOL_PINS_COLUMNS = [
  'tool_id',
  'upstream',
  'upstream_tool',
  'approved_hash',
  'approved_definition',
  'offered_hash',
  'offered_definition',
  'status',
  'first_seen_at',
  'changed_at',
  'approved_at',
  'approved_by',
  'findings',
] as const;

const SELECTED = UPSTREAM_TOOL_PINS_COLUMNS.join(', ');

function pinOf(row: PinRow): ToolPin {
  return {
    toolId: row.tool_id,
    upstream: row.upstream,
    upstreamTool: row.upstream_tool,
    approvedHash: row.approved_hash,
    approvedDefinition: row.approved_definition,
    offeredHash: row.offered_hash,
    offeredDefinition: row.offered_definition,
    status: row.status,
    firstSeenAt: new Date(row.first_seen_at),
    changedAt: row.changed_at ? new Date(row.changed_at) : null,
    approvedAt: row.approved_at ? new Date(row.approved_at) : null,
    approvedBy: row.approved_by,
    findings: row.findings ?? [],
  };
}

/**
 * The one home of `upstream_tool_pins` SQL. Writes take the caller's transaction manager (from
 * `transaction`, after `lock`), so a pin change commits together with its audit record.
 */
@Injectable()
export class UpstreamPinRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Takes the pin lock until the manager's transaction ends: pin changes are serialised across replicas. */
  async lock(manager: EntityManager): Promise<void> {
    await manager.query(`SELECT pg_advisory_xact_lock($1)`, [PIN_LOCK_KEY]);
  }

  async findMany(manager: EntityManager, toolIds: string[]): Promise<ToolPin[]> {
    const rows: PinRow[] = await manager.query(`SELECT ${SELECTED} FROM upstream_tool_pins WHERE tool_id = ANY($1::text[])`, [toolIds]);
    return rows.map(pinOf);
  }

  /** The pin, or undefined. `forUpdate` locks its row until the manager's transaction ends. */
  async find(toolId: string, manager: EntityManager = this.dataSource.manager, forUpdate = false): Promise<ToolPin | undefined> {
    const [row]: PinRow[] = await manager.query(
      `SELECT ${SELECTED} FROM upstream_tool_pins WHERE tool_id = $1${forUpdate ? ' FOR UPDATE' : ''}`,
      [toolId],
    );
    return row ? pinOf(row) : undefined;
  }

  /** The approved hash of each given tool that has one. */
  async approvedHashes(toolIds: string[]): Promise<Map<string, string>> {
    const rows: Array<{ tool_id: string; approved_hash: string }> = await this.dataSource.query(
      `SELECT tool_id, approved_hash FROM upstream_tool_pins WHERE tool_id = ANY($1::text[]) AND approved_hash IS NOT NULL`,
      [toolIds],
    );
    return new Map(rows.map((row) => [row.tool_id, row.approved_hash]));
  }

  /** Pins a tool seen for the first time: its definition approved as offered (trust on first use). */
  async insertApproved(manager: EntityManager, upstream: string, entry: PinnableEntry, now: Date): Promise<void> {
    await manager.query(
      `INSERT INTO upstream_tool_pins (tool_id, upstream, upstream_tool, approved_hash, approved_definition, offered_hash,
         offered_definition, status, first_seen_at, approved_at)
       VALUES ($1, $2, $3, $4, $5::jsonb, $4, $5::jsonb, 'approved', $6, $6)`,
      [entry.toolId, upstream, entry.upstreamName, entry.hash, JSON.stringify(entry.pinned), now],
    );
  }

  /** Records what the upstream offers now, in the given status. */
  async offer(
    manager: EntityManager,
    upstream: string,
    entry: PinnableEntry,
    status: PinStatus,
    now: Date,
    findings: DefinitionFinding[],
  ): Promise<void> {
    await manager.query(
      `UPDATE upstream_tool_pins SET upstream = $2, upstream_tool = $3, offered_hash = $4, offered_definition = $5::jsonb,
         status = $6, changed_at = $7, findings = $8::jsonb
       WHERE tool_id = $1`,
      [entry.toolId, upstream, entry.upstreamName, entry.hash, JSON.stringify(entry.pinned), status, now, JSON.stringify(findings)],
    );
  }

  /** Pins (or re-pins) a tool as pending with nothing approved. */
  async hold(manager: EntityManager, upstream: string, entry: PinnableEntry, findings: DefinitionFinding[], now: Date): Promise<void> {
    await manager.query(
      `INSERT INTO upstream_tool_pins (tool_id, upstream, upstream_tool, approved_hash, approved_definition, offered_hash,
         offered_definition, status, first_seen_at, changed_at, findings)
       VALUES ($1, $2, $3, NULL, NULL, $4, $5::jsonb, 'pending', $6, $6, $7::jsonb)
       ON CONFLICT (tool_id) DO UPDATE SET upstream = EXCLUDED.upstream, upstream_tool = EXCLUDED.upstream_tool,
         approved_hash = NULL, approved_definition = NULL, offered_hash = EXCLUDED.offered_hash,
         offered_definition = EXCLUDED.offered_definition, status = 'pending', changed_at = EXCLUDED.changed_at,
         approved_at = NULL, findings = EXCLUDED.findings`,
      [entry.toolId, upstream, entry.upstreamName, entry.hash, JSON.stringify(entry.pinned), now, JSON.stringify(findings)],
    );
  }

  /** Approves the definition on offer; answers the pin as saved. */
  async approveOffered(manager: EntityManager, toolId: string, approvedAt: Date, approvedBy: string): Promise<ToolPin> {
    const [saved] = returnedRows<PinRow>(
      await manager.query(
        `UPDATE upstream_tool_pins SET approved_hash = offered_hash, approved_definition = offered_definition, status = 'approved',
           approved_at = $2, approved_by = $3
         WHERE tool_id = $1 RETURNING ${SELECTED}`,
        [toolId, approvedAt, approvedBy],
      ),
    );
    return pinOf(saved);
  }
}
