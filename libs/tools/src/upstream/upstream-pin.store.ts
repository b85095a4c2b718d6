import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { AuditAction, AuditService } from '@app/audit';
import { Actor, AppException, Clock, Principal } from '@app/core';
import { returnedRows } from '@app/database';
import { DefinitionFinding, screenDefinition } from './definition-screen';
import { changedFields, PinnedDefinition, UpstreamToolEntry } from './upstream-tool-definition';

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

const PIN_COLUMNS = `tool_id, upstream, upstream_tool, approved_hash, approved_definition, offered_hash, offered_definition,
  status, first_seen_at, changed_at, approved_at, approved_by, findings`;

const HELD_OUTCOME = 'disabled until an administrator approves the offered definition';

export interface ApprovalOutcome {
  pin: ToolPin;
  /** False when the offered definition was already the approved one (nothing written). */
  changed: boolean;
}

/**
 * Definition pins of upstream tools (`upstream_tool_pins`). A tool is pinned the first time it is
 * seen; afterwards an offered definition whose hash differs from the approved one puts the pin in
 * `pending` (audited critical) until an administrator approves that exact hash. Trust on first use
 * never covers a definition the screen flags (hidden text, instructions to the model): such a tool
 * is pending from its first sight, with nothing approved (audited critical as
 * tool.definition_flagged). Every change and its audit record commit in one transaction.
 */
@Injectable()
export class UpstreamPinStore {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  /**
   * Records what an upstream offers now and answers the approved hash of each offered tool.
   * New tools are pinned; a changed definition becomes pending (once per distinct offer); an
   * upstream that went back to the approved definition is trusted again.
   */
  async observe(upstream: string, entries: UpstreamToolEntry[]): Promise<Map<string, string>> {
    if (entries.length === 0) return new Map();
    return this.dataSource.transaction(async (manager) => {
      await manager.query(`SELECT pg_advisory_xact_lock($1)`, [PIN_LOCK_KEY]);
      const rows: PinRow[] = await manager.query(`SELECT ${PIN_COLUMNS} FROM upstream_tool_pins WHERE tool_id = ANY($1::text[])`, [
        entries.map((entry) => entry.toolId),
      ]);
      const existing = new Map(rows.map((row) => [row.tool_id, row]));
      const approved = new Map<string, string>();
      const pinned: Array<{ toolId: string; hash: string }> = [];
      const now = this.clock.now();
      for (const entry of entries) {
        const row = existing.get(entry.toolId);
        const findings = screenDefinition(entry.pinned);
        if (findings.length > 0 && (!row || (row.approved_hash === entry.hash && row.approved_by === null))) {
          // First sight, or a definition only ever trusted automatically (pinned before screening existed).
          await this.hold(manager, entry, upstream, findings, now, row !== undefined);
          continue;
        }
        if (!row) {
          await manager.query(
            `INSERT INTO upstream_tool_pins (tool_id, upstream, upstream_tool, approved_hash, approved_definition, offered_hash,
               offered_definition, status, first_seen_at, approved_at)
             VALUES ($1, $2, $3, $4, $5::jsonb, $4, $5::jsonb, 'approved', $6, $6)`,
            [entry.toolId, upstream, entry.upstreamName, entry.hash, JSON.stringify(entry.pinned), now],
          );
          pinned.push({ toolId: entry.toolId, hash: entry.hash });
          approved.set(entry.toolId, entry.hash);
          continue;
        }
        if (row.approved_hash !== null) approved.set(entry.toolId, row.approved_hash);
        if (entry.hash === row.approved_hash) {
          if (row.status === 'pending' || row.offered_hash !== entry.hash) {
            await this.offer(manager, entry, upstream, 'approved', now, findings);
            await this.audit.record(manager, {
              action: AuditAction.TOOL_DEFINITION_RESTORED,
              resource: `tool:${entry.toolId}`,
              result: 'success',
              severity: 'warning',
              details: { upstream, upstreamTool: entry.upstreamName, approvedHash: row.approved_hash, withdrawnHash: row.offered_hash },
            });
          }
        } else if (row.status !== 'pending' || row.offered_hash !== entry.hash) {
          await this.offer(manager, entry, upstream, 'pending', now, findings);
          await this.auditHeld(manager, AuditAction.TOOL_DEFINITION_CHANGED, upstream, entry, {
            approvedHash: row.approved_hash,
            changedFields: changedFields(row.approved_definition, entry.pinned),
            findings,
          });
        }
      }
      if (pinned.length > 0) {
        await this.audit.record(manager, {
          action: AuditAction.TOOL_DEFINITION_PINNED,
          resource: `upstream:${upstream}`,
          result: 'success',
          severity: 'info',
          details: { upstream, tools: pinned },
        });
      }
      return approved;
    });
  }

  /** The approved hash of each given tool that has a pin (read by every catalogue reconciliation). */
  async approvedHashes(toolIds: string[]): Promise<Map<string, string>> {
    if (toolIds.length === 0) return new Map();
    const rows: Array<{ tool_id: string; approved_hash: string }> = await this.dataSource.query(
      `SELECT tool_id, approved_hash FROM upstream_tool_pins WHERE tool_id = ANY($1::text[]) AND approved_hash IS NOT NULL`,
      [toolIds],
    );
    return new Map(rows.map((row) => [row.tool_id, row.approved_hash]));
  }

  async find(toolId: string): Promise<ToolPin | undefined> {
    const [row]: PinRow[] = await this.dataSource.query(`SELECT ${PIN_COLUMNS} FROM upstream_tool_pins WHERE tool_id = $1`, [toolId]);
    return row ? pinOf(row) : undefined;
  }

  /**
   * An administrator trusts the definition the upstream offers now. The hash they reviewed must
   * be the one on offer: if the upstream changed again meanwhile, nothing is approved (409).
   */
  async approve(actor: Principal, toolId: string, definitionHash: string, client: Actor): Promise<ApprovalOutcome> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query(`SELECT pg_advisory_xact_lock($1)`, [PIN_LOCK_KEY]);
      const [row]: PinRow[] = await manager.query(`SELECT ${PIN_COLUMNS} FROM upstream_tool_pins WHERE tool_id = $1 FOR UPDATE`, [toolId]);
      if (!row) throw AppException.notFound('No upstream tool definition is pinned under this id');
      if (row.offered_hash !== definitionHash) {
        throw AppException.conflict(
          'The upstream offers a different definition than the one given; review the current offer and approve its hash',
          'DEFINITION_HASH_MISMATCH',
        );
      }
      if (row.approved_hash === row.offered_hash) return { pin: pinOf(row), changed: false };
      const now = this.clock.now();
      const [saved] = returnedRows<PinRow>(
        await manager.query(
          `UPDATE upstream_tool_pins SET approved_hash = offered_hash, approved_definition = offered_definition, status = 'approved',
             approved_at = $2, approved_by = $3
           WHERE tool_id = $1 RETURNING ${PIN_COLUMNS}`,
          [toolId, now, actor.userId],
        ),
      );
      await this.audit.record(manager, {
        action: AuditAction.TOOL_DEFINITION_APPROVED,
        userId: actor.userId,
        resource: `tool:${toolId}`,
        result: 'success',
        severity: 'warning',
        ipAddress: client.ipAddress,
        userAgent: client.userAgent,
        details: {
          upstream: row.upstream,
          upstreamTool: row.upstream_tool,
          previousHash: row.approved_hash,
          approvedHash: row.offered_hash,
          changedFields: changedFields(row.approved_definition, row.offered_definition),
        },
      });
      return { pin: pinOf(saved), changed: true };
    });
  }

  private async offer(
    manager: EntityManager,
    entry: UpstreamToolEntry,
    upstream: string,
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

  /**
   * Holds a flagged definition with nothing approved: the provider treats the tool as pending
   * (hidden from agents, calls refused) until an administrator approves this exact hash.
   */
  private async hold(
    manager: EntityManager,
    entry: UpstreamToolEntry,
    upstream: string,
    findings: DefinitionFinding[],
    now: Date,
    wasTrusted: boolean,
  ): Promise<void> {
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
    await this.auditHeld(manager, AuditAction.TOOL_DEFINITION_FLAGGED, upstream, entry, { findings, trustRevoked: wasTrusted });
  }

  /** The critical audit record of a definition held for an administrator's approval. */
  private async auditHeld(
    manager: EntityManager,
    action: typeof AuditAction.TOOL_DEFINITION_CHANGED | typeof AuditAction.TOOL_DEFINITION_FLAGGED,
    upstream: string,
    entry: UpstreamToolEntry,
    details: Record<string, unknown>,
  ): Promise<void> {
    await this.audit.record(manager, {
      action,
      resource: `tool:${entry.toolId}`,
      result: 'failure',
      severity: 'critical',
      details: { upstream, upstreamTool: entry.upstreamName, offeredHash: entry.hash, ...details, outcome: HELD_OUTCOME },
    });
  }
}

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
