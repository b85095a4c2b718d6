import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { AuditAction, AuditService } from '@app/audit';
import {
  Actor,
  AppException,
  BackgroundJob,
  BackgroundJobs,
  Clock,
  ErrorDetail,
  PERMISSION_PATTERN,
  Principal,
  rateWindowMs,
} from '@app/core';
import { MigrationService, UnitOfWork } from '@app/database';
import { ClusterEventBus, clusterEvent } from '@app/redis';
import { TOOL_CATEGORIES, ToolCategory, ToolDefinition } from '../provider/tool-provider';
import { fingerprint } from '../common/fingerprint';
import { ToolSchemaValidator } from '../execution/tool-schema-validator';
import { ToolsErrorCode } from '../tool-error-codes';
import { CatalogTool, effectiveSettings, RateLimit, ToolOverrides } from './catalog-tool';
import { ToolRepository } from './tool.repository';
import { ToolProviderRegistry } from './tool-provider.registry';

/** Other replicas' admin changes reach this one within this interval. */
const REFRESH_INTERVAL_MS = 10_000;
const TOOL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** Another replica changed the `tools` table: re-read it now rather than at the next refresh. */
export const TOOL_CATALOGUE_CHANGED = clusterEvent<{ toolIds: string[] }>('tools.catalogue.changed');

export interface ToolListFilter {
  category?: ToolCategory;
  enabled?: boolean;
  /** Only these tools (an execution scope's context); all when absent. */
  ids?: readonly string[];
  offset: number;
  limit: number;
}

/** An admin's change: a value sets the override, `null` returns the field to the provider's default. */
export interface ToolChanges {
  enabled?: boolean | null;
  permissions?: string[] | null;
  rateLimit?: RateLimit | null;
}

/**
 * The catalogue: every provider's tools, stored in `tools` with the admins' overrides, served
 * from memory. At start it reconciles the table with what the providers list now (new tools
 * added, changed definitions updated, vanished ones marked unavailable, overrides kept), then
 * keeps the in-memory copy current: at once after a change made here; after one made by
 * another replica as soon as its announcement arrives (cluster event bus), at the latest within
 * REFRESH_INTERVAL_MS (the announcement was lost: Redis away).
 */
@Injectable()
export class ToolCatalogService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ToolCatalogService.name);
  private tools = new Map<string, CatalogTool>();
  /** Available tools sorted by id: what listings page through. */
  private listed: CatalogTool[] = [];
  private refreshJob: BackgroundJob | undefined;
  /** Bumped by every local change, so a reload that read the table before it does not undo it. */
  private generation = 0;
  private readonly ready: Promise<void>;
  private markReady!: () => void;
  private loaded = false;
  private readonly changeListeners = new Set<() => void>();
  /** What listeners were last told about: ids, availability and last change of every tool. */
  private signature = '';
  private listingRevision = 0;

  constructor(
    private readonly rows: ToolRepository,
    private readonly migrations: MigrationService,
    private readonly registry: ToolProviderRegistry,
    private readonly validator: ToolSchemaValidator,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly bus: ClusterEventBus,
    private readonly jobs: BackgroundJobs,
    private readonly unitOfWork: UnitOfWork,
  ) {
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    bus.subscribe(TOOL_CATALOGUE_CHANGED, (_change, origin) => {
      if (origin === 'remote' && this.loaded)
        this.reload().catch((error: unknown) => this.logger.warn({ err: error }, 'Tool catalogue reload failed'));
    });
    // Announcements may have been missed while the bus was down.
    bus.onResync(() => {
      if (this.loaded) this.reload().catch((error: unknown) => this.logger.warn({ err: error }, 'Tool catalogue reload failed'));
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    this.refreshJob = this.jobs.every('tools.catalogue-refresh', REFRESH_INTERVAL_MS, () => this.refresh());
    // With RUN_MIGRATIONS=false a deployment job may not have created the tables yet: the
    // catalogue then stays empty (and the server not ready) until a refresh finds the schema.
    if (await this.schemaIsCurrent()) {
      await this.reconcile();
      this.markLoaded();
    } else {
      this.logger.warn('Schema is not current: the tool catalogue loads once the migrations have run');
    }
  }

  onApplicationShutdown(): void {
    this.refreshJob?.stop();
    this.refreshJob = undefined;
  }

  /** Resolves once the first reconciliation has loaded the catalogue. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  private async refresh(): Promise<void> {
    if (this.loaded) return this.reload();
    if (!(await this.schemaIsCurrent())) return;
    await this.reconcile();
    this.markLoaded();
  }

  private markLoaded(): void {
    this.loaded = true;
    this.markReady();
  }

  private schemaIsCurrent(): Promise<boolean> {
    return this.migrations.isCurrent().catch(() => false);
  }

  /**
   * Calls `listener` after the in-memory catalogue changed (a tool added, changed, enabled,
   * disabled or gone; here or, within the refresh interval, on another replica). Returns the
   * unsubscribe function. The MCP gateway tells its clients `tools/list_changed` from this.
   */
  onChanged(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Changes whenever what listings show changes (the first load too): a key for caches of listings. */
  get revision(): number {
    return this.listingRevision;
  }

  /** A tool by id, available or not (callers decide what unavailable means for them). */
  find(id: string): CatalogTool | undefined {
    return this.tools.get(id);
  }

  list(filter: ToolListFilter): { tools: CatalogTool[]; total: number } {
    const matching = this.listed.filter(
      (tool) =>
        (filter.category === undefined || tool.category === filter.category) &&
        (filter.enabled === undefined || tool.enabled === filter.enabled) &&
        (filter.ids === undefined || filter.ids.includes(tool.id)),
    );
    return { tools: matching.slice(filter.offset, filter.offset + filter.limit), total: matching.length };
  }

  /**
   * Brings the table in line with what every provider lists now. A provider that fails to
   * answer keeps its tools as they were (an upstream server that is down is not a removal).
   */
  async reconcile(): Promise<void> {
    const listed = new Map<string, { definition: ToolDefinition; provider: string; hash: string }>();
    const answered = new Set<string>();
    for (const provider of this.registry.all()) {
      let definitions: ToolDefinition[];
      try {
        definitions = await provider.listTools();
      } catch (error) {
        this.logger.warn({ err: error, provider: provider.name }, 'Tool provider did not list its tools; keeping its catalogue entries');
        continue;
      }
      answered.add(provider.name);
      for (const definition of definitions) {
        const problem = this.problemWith(definition);
        if (problem) {
          this.logger.error({ provider: provider.name, tool: definition?.id }, `Tool definition refused: ${problem}`);
          continue;
        }
        if (listed.has(definition.id)) {
          this.logger.error({ provider: provider.name, tool: definition.id }, 'Tool id listed twice; the first listing wins');
          continue;
        }
        listed.set(definition.id, { definition, provider: provider.name, hash: fingerprint(definition) });
      }
    }

    const changes = { added: [] as string[], updated: [] as string[], restored: [] as string[], unavailable: [] as string[] };
    await this.unitOfWork.run(async (manager) => {
      await this.rows.lockForReconcile(manager);
      const stored = await this.rows.all(manager);
      const existing = new Map(stored.map((tool) => [tool.id, tool]));
      const now = this.clock.now();
      for (const [id, entry] of listed) {
        const tool = existing.get(id);
        const write = (overrides: ToolOverrides) => ({ ...entry, settings: effectiveSettings(entry.definition, overrides), now });
        if (!tool) {
          await this.rows.writeDefinition(manager, 'insert', write({}));
          changes.added.push(id);
        } else if (tool.definitionHash !== entry.hash || !tool.available || tool.provider !== entry.provider) {
          await this.rows.writeDefinition(manager, 'update', write(tool.overrides));
          (tool.available ? changes.updated : changes.restored).push(id);
        }
      }
      for (const tool of stored) {
        if (tool.available && !listed.has(tool.id) && (answered.has(tool.provider) || !this.registry.get(tool.provider))) {
          await this.rows.markUnavailable(manager, tool.id, now);
          changes.unavailable.push(tool.id);
        }
      }
      for (const ids of Object.values(changes)) ids.sort();
      if (Object.values(changes).some((ids) => ids.length > 0)) {
        await this.audit.record(manager, {
          action: AuditAction.TOOL_CATALOG_RECONCILED,
          resource: 'tools',
          result: 'success',
          severity: 'info',
          details: changes,
        });
      }
    });
    const changed = Object.values(changes).flat();
    if (changed.length > 0) this.logger.log({ ...changes }, 'Tool catalogue reconciled');
    await this.reload();
    if (changed.length > 0) await this.bus.publish(TOOL_CATALOGUE_CHANGED, { toolIds: changed });
  }

  /** Re-reads the table into memory. */
  async reload(): Promise<void> {
    const generation = this.generation;
    const stored = await this.rows.all();
    if (generation !== this.generation) return;
    this.install(new Map(stored.map((tool) => [tool.id, tool])));
  }

  /** An administrator's change to one tool, audited in the same transaction. */
  async update(actor: Principal, id: string, changes: ToolChanges, client: Actor): Promise<CatalogTool> {
    const problems = validateChanges(changes);
    if (problems.length > 0) throw AppException.validation(problems);
    const updated = await this.unitOfWork.run(async (manager) => {
      const tool = await this.rows.findForUpdate(manager, id);
      if (!tool) throw AppException.notFound('Tool not found');
      if (changes.enabled === true && tool.definition.pendingApproval) {
        throw AppException.conflict(
          `Tool ${id} has a changed upstream definition awaiting approval: POST /admin/tools/${id}/approve`,
          ToolsErrorCode.TOOL_PENDING_APPROVAL,
        );
      }
      const overrides = applyChanges(tool.overrides, changes);
      const before = {
        enabled: tool.enabled,
        permissions: tool.permissions,
        rateLimit: { requests: tool.rateLimit.requests, window: tool.rateLimit.window },
      };
      const after = effectiveSettings(tool.definition, overrides);
      const saved = await this.rows.saveSettings(manager, id, after, overrides, { at: this.clock.now(), by: actor.userId });
      await this.audit.record(manager, {
        action: AuditAction.ADMIN_TOOL_UPDATED,
        userId: actor.userId,
        resource: `tool:${id}`,
        result: 'success',
        severity: before.enabled && !after.enabled ? 'warning' : 'info',
        ipAddress: client.ipAddress,
        userAgent: client.userAgent,
        details: { changes, before, after },
      });
      return saved;
    });
    this.generation += 1;
    const tools = new Map(this.tools);
    tools.set(updated.id, updated);
    this.install(tools);
    await this.bus.publish(TOOL_CATALOGUE_CHANGED, { toolIds: [updated.id] });
    return updated;
  }

  private install(tools: Map<string, CatalogTool>): void {
    for (const tool of tools.values()) {
      if (!tool.available) continue;
      try {
        this.validator.prepare(tool);
      } catch (error) {
        // Refused at reconcile time already; only a hand-edited row gets here.
        this.logger.error({ err: error, tool: tool.id }, 'Tool schema does not compile; the tool is unavailable');
        tool.available = false;
      }
    }
    this.tools = tools;
    this.listed = [...tools.values()].filter((tool) => tool.available).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.validator.retainOnly([...tools.values()].map((tool) => tool.definitionHash));
    const signature = this.listed
      .map((tool) => `${tool.id}@${tool.updatedAt.getTime()}:${tool.enabled}:${tool.definitionHash}:${tool.permissions.join(',')}`)
      .join('|');
    if (signature === this.signature) return;
    this.listingRevision += 1;
    const first = this.signature === '';
    this.signature = signature;
    if (first) return;
    for (const listener of this.changeListeners) {
      try {
        listener();
      } catch (error) {
        this.logger.error({ err: error }, 'Tool catalogue change listener failed');
      }
    }
  }

  /** Why a provider's definition cannot enter the catalogue, or null. */
  private problemWith(definition: ToolDefinition): string | null {
    if (!definition || typeof definition !== 'object') return 'not an object';
    if (typeof definition.id !== 'string' || !TOOL_ID_PATTERN.test(definition.id)) return 'id is missing or malformed';
    if (typeof definition.name !== 'string' || definition.name.length === 0) return 'name is missing';
    if (typeof definition.version !== 'string') return 'version is missing';
    if (!TOOL_CATEGORIES.includes(definition.category)) return `category must be one of ${TOOL_CATEGORIES.join(', ')}`;
    if (!Array.isArray(definition.permissions) || !definition.permissions.every((p) => PERMISSION_PATTERN.test(p))) {
      return 'permissions must be permission names';
    }
    const limit = definition.rateLimit;
    if (!limit || !Number.isInteger(limit.requests) || limit.requests < 1 || rateWindowMs(limit.window) === null) {
      return 'rateLimit must be { requests: positive integer, window: like 1m }';
    }
    try {
      this.validator.prepare({
        definitionHash: fingerprint(definition),
        inputSchema: definition.inputSchema,
        outputSchema: definition.outputSchema,
      });
    } catch (error) {
      return `schema does not compile: ${(error as Error).message}`;
    }
    return null;
  }
}

function validateChanges(changes: ToolChanges): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  if (changes.enabled === undefined && changes.permissions === undefined && changes.rateLimit === undefined) {
    problems.push({ message: 'Give at least one of enabled, permissions, rateLimit', code: 'required' });
  }
  if (changes.rateLimit && rateWindowMs(changes.rateLimit.window) === null) {
    problems.push({ field: 'rateLimit.window', message: 'must be a window like 30s, 1m, 1h or 1d (at most 7d)', code: 'rateWindow' });
  }
  return problems;
}

function applyChanges(current: ToolOverrides, changes: ToolChanges): ToolOverrides {
  const next: ToolOverrides = { ...current };
  if (changes.enabled === null) delete next.enabled;
  else if (changes.enabled !== undefined) next.enabled = changes.enabled;
  if (changes.permissions === null) delete next.permissions;
  else if (changes.permissions !== undefined) next.permissions = [...new Set(changes.permissions)].sort();
  if (changes.rateLimit === null) delete next.rateLimit;
  else if (changes.rateLimit !== undefined) next.rateLimit = { requests: changes.rateLimit.requests, window: changes.rateLimit.window };
  return next;
}
