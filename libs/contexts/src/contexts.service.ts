import { Inject, Injectable } from '@nestjs/common';
import { AuditAction, auditEvent, AuditService } from '@app/audit';
import {
  Actor,
  APP_CONFIG,
  AppConfig,
  AppException,
  Clock,
  ErrorCode,
  ErrorDetail,
  newId,
  pageOffset,
  paginationOf,
  Permission,
  Principal,
} from '@app/core';
import { UnitOfWork } from '@app/database';
import { ToolCatalogService, UpstreamFeatureService } from '@app/tools';
import type { Context } from './context';
import { ContextAccessService } from './context-access.service';
import { ContextChanges, ContextRepository } from './context.repository';
import { settingsProblems } from './context-settings';
import { ContextsErrorCode } from './contexts-error-codes';
import { ContextListDto } from './dto/context-list.dto';
import { ContextDto } from './dto/context.dto';
import { CreateContextDto } from './dto/create-context.dto';
import { ListContextsQueryDto } from './dto/list-contexts-query.dto';
import { UpdateContextDto } from './dto/update-context.dto';

/**
 * Contexts: create, list, read, change, delete. Owners see and manage their own, administrators
 * everyone's, anyone else gets 404. Each change commits together with its audit record.
 */
@Injectable()
export class ContextsService {
  private readonly maxTimeoutMs: number;

  constructor(
    private readonly contexts: ContextRepository,
    private readonly access: ContextAccessService,
    private readonly catalog: ToolCatalogService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly unitOfWork: UnitOfWork,
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly features: UpstreamFeatureService,
  ) {
    this.maxTimeoutMs = config.tools.maxTimeoutMs;
  }

  async create(principal: Principal, dto: CreateContextDto, client: Actor): Promise<ContextDto> {
    const settings = dto.settings ?? {};
    this.checkSettings(settings);
    const tools = await this.checkTools(principal, dto.tools ?? []);
    const context = await this.unitOfWork.run(async (manager) => {
      const now = this.clock.now();
      const created = await this.contexts.insert(manager, {
        id: newId('ctx'),
        userId: principal.userId,
        name: dto.name,
        description: dto.description ?? '',
        status: 'active',
        metadata: dto.metadata ?? {},
        tools,
        settings,
        createdAt: now,
        updatedAt: now,
      });
      await this.audit.record(
        manager,
        auditEvent(AuditAction.CONTEXT_CREATE, client, {
          userId: principal.userId,
          resource: `context:${created.id}`,
          details: { ownerId: created.userId, name: created.name, tools: created.tools },
        }),
      );
      return created;
    });
    return ContextDto.from(context);
  }

  async list(principal: Principal, query: ListContextsQueryDto): Promise<ContextListDto> {
    if (principal.contextId !== undefined) throw AppException.forbidden('This API key is bound to one context; it cannot list contexts');
    const admin = principal.permissions.includes(Permission.ADMIN_CONTEXTS_READ);
    if (!admin && query.userId !== undefined && query.userId !== principal.userId) {
      throw AppException.forbidden("Only administrators may list other users' contexts");
    }
    const userId = admin ? query.userId : principal.userId;
    const sort = query.sort ?? 'created';
    const { contexts, total } = await this.contexts.page(
      { userId, status: query.status },
      { sort, direction: query.order ?? (sort === 'name' ? 'asc' : 'desc'), limit: query.limit, offset: pageOffset(query) },
    );
    return { contexts: contexts.map((context) => ContextDto.from(context)), pagination: paginationOf(query, total) };
  }

  async get(principal: Principal, contextId: string): Promise<ContextDto> {
    return ContextDto.from(await this.access.findVisible(principal, contextId));
  }

  async update(principal: Principal, contextId: string, dto: UpdateContextDto, client: Actor): Promise<ContextDto> {
    const given = (['name', 'description', 'metadata', 'tools', 'settings', 'status'] as const).filter((field) => dto[field] !== undefined);
    if (given.length === 0) {
      throw AppException.validation([
        { message: 'Give at least one of name, description, metadata, tools, settings, status', code: 'required' },
      ]);
    }
    if (dto.settings !== undefined) this.checkSettings(dto.settings);
    const tools = dto.tools === undefined ? undefined : await this.checkTools(principal, dto.tools);

    const updated = await this.unitOfWork.run(async (manager) => {
      const before = await this.access.findVisible(principal, contextId, manager, true);
      const changes: ContextChanges = {
        name: dto.name,
        description: dto.description,
        metadata: dto.metadata,
        tools,
        settings: dto.settings,
        status: dto.status,
      };
      const after = await this.contexts.update(manager, contextId, changes, this.clock.now());
      const archived = before.status !== 'archived' && after.status === 'archived';
      await this.audit.record(
        manager,
        auditEvent(archived ? AuditAction.CONTEXT_ARCHIVE : AuditAction.CONTEXT_UPDATE, client, {
          userId: principal.userId,
          resource: `context:${after.id}`,
          details: { ownerId: after.userId, changes: given, ...changeDetails(before, after) },
        }),
      );
      return after;
    });
    return ContextDto.from(updated);
  }

  async remove(principal: Principal, contextId: string, client: Actor): Promise<void> {
    await this.unitOfWork.run(async (manager) => {
      const context = await this.access.findVisible(principal, contextId, manager, true);
      await this.contexts.delete(manager, contextId);
      await this.audit.record(
        manager,
        auditEvent(AuditAction.CONTEXT_DELETE, client, {
          userId: principal.userId,
          resource: `context:${context.id}`,
          severity: 'warning',
          details: { ownerId: context.userId, name: context.name, status: context.status, tools: context.tools },
        }),
      );
    });
  }

  private checkSettings(settings: Record<string, unknown>): void {
    const problems = settingsProblems(settings, this.maxTimeoutMs);
    if (problems.length > 0) throw AppException.validation(problems, 'Invalid context settings');
  }

  /**
   * Every tool must exist in the catalogue and be callable by the principal. All problems are
   * reported at once, one detail per `tools[i]`: 400 if any id is unknown, else 403 when the
   * only problem is missing permissions. Returns the ids without repeats, in their given order.
   */
  private async checkTools(principal: Principal, tools: string[]): Promise<string[]> {
    await this.catalog.whenReady();
    const held = new Set(principal.permissions);
    const unknown: ErrorDetail[] = [];
    const forbidden: ErrorDetail[] = [];
    for (const [index, id] of tools.entries()) {
      const tool = this.catalog.find(id);
      const field = `tools[${index}]`;
      if (!tool || !tool.available) {
        // A federated prompt's name or resource (template) URI is a member like a tool (README: federated prompts and resources).
        const member = await this.features.membership(principal, id);
        if (member === 'forbidden') {
          forbidden.push({ field, message: `Using ${id} requires its upstream's permissions`, code: ContextsErrorCode.TOOL_NOT_PERMITTED });
        } else if (member === 'unknown') {
          unknown.push({ field, message: `Unknown tool: ${id}`, code: ContextsErrorCode.UNKNOWN_TOOL });
        }
        continue;
      }
      const missing = tool.permissions.filter((permission) => !held.has(permission));
      if (missing.length > 0) {
        forbidden.push({ field, message: `Calling ${id} requires: ${missing.join(', ')}`, code: ContextsErrorCode.TOOL_NOT_PERMITTED });
      }
    }
    if (unknown.length > 0) throw AppException.validation([...unknown, ...forbidden], 'Unknown tools');
    if (forbidden.length > 0) {
      throw new AppException(ErrorCode.FORBIDDEN, 'You may not call some of these tools', 403, forbidden);
    }
    return [...new Set(tools)];
  }
}

/** Before and after of the fields worth keeping in the audit log (metadata and settings values stay out). */
function changeDetails(before: Context, after: Context): Record<string, unknown> {
  const details: Record<string, unknown> = {};
  if (before.name !== after.name) details.name = { before: before.name, after: after.name };
  if (before.status !== after.status) details.status = { before: before.status, after: after.status };
  if (before.tools.join('\u0000') !== after.tools.join('\u0000')) details.tools = { before: before.tools, after: after.tools };
  return details;
}
