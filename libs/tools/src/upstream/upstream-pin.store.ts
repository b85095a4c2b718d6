import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AuditAction, AuditService } from '@app/audit';
import { Actor, AppException, Clock, Principal } from '@app/core';
import { DefinitionFinding, screenDefinition } from './definition-screen';
import { ToolPin, UpstreamPinRepository } from './upstream-pin.repository';
import { changedFields, PinnableEntry } from './upstream-tool-definition';
import { UnitOfWork } from '@app/database';

export type { PinStatus, ToolPin } from './upstream-pin.repository';

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
    private readonly pins: UpstreamPinRepository,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly unitOfWork: UnitOfWork,
  ) {}

  /**
   * Records what an upstream offers now and answers the approved hash of each offered tool.
   * New tools are pinned; a changed definition becomes pending (once per distinct offer); an
   * upstream that went back to the approved definition is trusted again.
   */
  async observe(upstream: string, entries: PinnableEntry[]): Promise<Map<string, string>> {
    if (entries.length === 0) return new Map();
    return this.unitOfWork.run(async (manager) => {
      await this.pins.lock(manager);
      const stored = await this.pins.findMany(
        manager,
        entries.map((entry) => entry.toolId),
      );
      const existing = new Map(stored.map((pin) => [pin.toolId, pin]));
      const approved = new Map<string, string>();
      const pinned: Array<{ toolId: string; hash: string }> = [];
      const now = this.clock.now();
      for (const entry of entries) {
        const pin = existing.get(entry.toolId);
        const findings = screenDefinition(entry.pinned);
        if (findings.length > 0 && (!pin || (pin.approvedHash === entry.hash && pin.approvedBy === null))) {
          // First sight, or a definition only ever trusted automatically (pinned before screening existed).
          await this.hold(manager, entry, upstream, findings, now, pin !== undefined);
          continue;
        }
        if (!pin) {
          await this.pins.insertApproved(manager, upstream, entry, now);
          pinned.push({ toolId: entry.toolId, hash: entry.hash });
          approved.set(entry.toolId, entry.hash);
          continue;
        }
        if (pin.approvedHash !== null) approved.set(entry.toolId, pin.approvedHash);
        if (entry.hash === pin.approvedHash) {
          if (pin.status === 'pending' || pin.offeredHash !== entry.hash) {
            await this.pins.offer(manager, upstream, entry, 'approved', now, findings);
            await this.audit.record(manager, {
              action: AuditAction.TOOL_DEFINITION_RESTORED,
              resource: `tool:${entry.toolId}`,
              result: 'success',
              severity: 'warning',
              details: { upstream, upstreamTool: entry.upstreamName, approvedHash: pin.approvedHash, withdrawnHash: pin.offeredHash },
            });
          }
        } else if (pin.status !== 'pending' || pin.offeredHash !== entry.hash) {
          await this.pins.offer(manager, upstream, entry, 'pending', now, findings);
          await this.auditHeld(manager, AuditAction.TOOL_DEFINITION_CHANGED, upstream, entry, {
            approvedHash: pin.approvedHash,
            changedFields: changedFields(pin.approvedDefinition, entry.pinned),
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
    return this.pins.approvedHashes(toolIds);
  }

  find(toolId: string): Promise<ToolPin | undefined> {
    return this.pins.find(toolId);
  }

  /**
   * An administrator trusts the definition the upstream offers now. The hash they reviewed must
   * be the one on offer: if the upstream changed again meanwhile, nothing is approved (409).
   */
  async approve(actor: Principal, toolId: string, definitionHash: string, client: Actor): Promise<ApprovalOutcome> {
    return this.unitOfWork.run(async (manager) => {
      await this.pins.lock(manager);
      const pin = await this.pins.find(toolId, manager, true);
      if (!pin) throw AppException.notFound('No upstream tool definition is pinned under this id');
      if (pin.offeredHash !== definitionHash) {
        throw AppException.conflict(
          'The upstream offers a different definition than the one given; review the current offer and approve its hash',
          'DEFINITION_HASH_MISMATCH',
        );
      }
      if (pin.approvedHash === pin.offeredHash) return { pin, changed: false };
      const saved = await this.pins.approveOffered(manager, toolId, this.clock.now(), actor.userId);
      await this.audit.record(manager, {
        action: AuditAction.TOOL_DEFINITION_APPROVED,
        userId: actor.userId,
        resource: `tool:${toolId}`,
        result: 'success',
        severity: 'warning',
        ipAddress: client.ipAddress,
        userAgent: client.userAgent,
        details: {
          upstream: pin.upstream,
          upstreamTool: pin.upstreamTool,
          previousHash: pin.approvedHash,
          approvedHash: pin.offeredHash,
          changedFields: changedFields(pin.approvedDefinition, pin.offeredDefinition),
        },
      });
      return { pin: saved, changed: true };
    });
  }

  /**
   * Holds a flagged definition with nothing approved: the provider treats the tool as pending
   * (hidden from agents, calls refused) until an administrator approves this exact hash.
   */
  private async hold(
    manager: EntityManager,
    entry: PinnableEntry,
    upstream: string,
    findings: DefinitionFinding[],
    now: Date,
    wasTrusted: boolean,
  ): Promise<void> {
    await this.pins.hold(manager, upstream, entry, findings, now);
    await this.auditHeld(manager, AuditAction.TOOL_DEFINITION_FLAGGED, upstream, entry, { findings, trustRevoked: wasTrusted });
  }

  /** The critical audit record of a definition held for an administrator's approval. */
  private async auditHeld(
    manager: EntityManager,
    action: typeof AuditAction.TOOL_DEFINITION_CHANGED | typeof AuditAction.TOOL_DEFINITION_FLAGGED,
    upstream: string,
    entry: PinnableEntry,
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
