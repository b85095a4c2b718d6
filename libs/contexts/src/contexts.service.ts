import { forwardRef, Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AuditAction, auditEvent, AuditService } from '@app/audit';
import { Actor, APP_CONFIG, AppConfig, AppException, Clock, ErrorCode, ErrorDetail, newId, pageOffset, paginationOf, Permission, Principal } from '@app/core';
import { returnedRows } from '@app/database';
import { ToolCatalogService } from '@app/tools';
import { CONTEXT_COLUMNS, ContextEntity, contextOf, ContextRow } from './context.entity';
import { ContextAccessService } from './context-access.service';
import { settingsProblems } from './context-settings';
import { ContextsErrorCode } from './contexts-error-codes';
import { ContextListDto } from './dto/context-list.dto';
import { ContextDto } from './dto/context.dto';
import { CreateContextDto } from './dto/create-context.dto';
import { ListContextsQueryDto } from './dto/list-contexts-query.dto';
import { UpdateContextDto } from './dto/update-context.dto';

const SORT_COLUMNS = {
  created: ['created_at'],
  updated: ['updated_at'],
  // Byte order after folding case: the same on every server, whatever its default collation.
  name: ['lower(name) COLLATE "C"', 'name COLLATE "C"'],
} as const;

/**
 * Contexts: create, list, read, change, delete. Owners see and manage their own, administrators
 * everyone's, anyone else gets 404. Each change commits together with its audit record.
 */
@Injectable()
export class ContextsService {
  private readonly maxTimeoutMs: number;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly access: ContextAccessService,
    // forwardRef: the tools module will import ContextAccessModule from this library.
    @Inject(forwardRef(() => ToolCatalogService)) private readonly catalog: ToolCatalogService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.maxTimeoutMs = config.tools.maxTimeoutMs;
  }

  async create(principal: Principal, dto: CreateContextDto, client: Actor): Promise<ContextDto> {
    const settings = dto.settings ?? {};
    this.checkSettings(settings);
    const tools = await this.checkTools(principal, dto.tools ?? []);
    const context = await this.dataSource.transaction(async (manager) => {
      const now = this.clock.now();
      const [row] = returnedRows<ContextRow>(
        await manager.query(
          `INSERT INTO contexts (id, user_id, name, description, status, metadata, tools, settings, created_at, updated_at)
           VALUES ($1, $2, $3, $4, 'active', $5::jsonb, $6, $7::jsonb, $8, $8)
           RETURNING ${CONTEXT_COLUMNS}`,
          [newId('ctx'), principal.userId, dto.name, dto.description ?? '', JSON.stringify(dto.metadata ?? {}), tools, JSON.stringify(settings), now],
        ),
      );
      const created = contextOf(row);
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
    const params: unknown[] = [];
    const where: string[] = [];
    if (userId !== undefined) {
      params.push(userId);
      where.push(`user_id = $${params.length}`);
    }
    if (query.status !== undefined) {
      params.push(query.status);
      where.push(`status = $${params.length}`);
    }
    const filter = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const sort = query.sort ?? 'created';
    const direction = (query.order ?? (sort === 'name' ? 'asc' : 'desc')) === 'asc' ? 'ASC' : 'DESC';
    const orderBy = [...SORT_COLUMNS[sort], 'id'].map((column) => `${column} ${direction}`).join(', ');

    const [{ total }]: Array<{ total: number }> = await this.dataSource.query(
      `SELECT count(*)::int AS total FROM contexts ${filter}`,
      params,
    );
    const rows: ContextRow[] = await this.dataSource.query(
      `SELECT ${CONTEXT_COLUMNS} FROM contexts ${filter} ORDER BY ${orderBy} LIMIT $${params.length + 1} OFFSET $${params.length + 2}`,
      [...params, query.limit, pageOffset(query)],
    );
    return { contexts: rows.map((row) => ContextDto.from(contextOf(row))), pagination: paginationOf(query, Number(total)) };
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

    const updated = await this.dataSource.transaction(async (manager) => {
      const before = await this.access.findVisible(principal, contextId, manager, true);
      const values: Record<string, unknown> = {
        name: dto.name,
        description: dto.description,
        metadata: dto.metadata === undefined ? undefined : JSON.stringify(dto.metadata),
        tools,
        settings: dto.settings === undefined ? undefined : JSON.stringify(dto.settings),
        status: dto.status,
      };
      const params: unknown[] = [contextId, this.clock.now()];
      const sets = ['updated_at = $2'];
      for (const field of given) {
        params.push(values[field]);
        const cast = field === 'metadata' || field === 'settings' ? '::jsonb' : '';
        sets.push(`${field} = $${params.length}${cast}`);
      }
      const [row] = returnedRows<ContextRow>(
        await manager.query(`UPDATE contexts SET ${sets.join(', ')} WHERE id = $1 RETURNING ${CONTEXT_COLUMNS}`, params),
      );
      const after = contextOf(row);
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
    await this.dataSource.transaction(async (manager) => {
      const context = await this.access.findVisible(principal, contextId, manager, true);
      await manager.query(`DELETE FROM contexts WHERE id = $1`, [contextId]);
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
    tools.forEach((id, index) => {
      const tool = this.catalog.find(id);
      const field = `tools[${index}]`;
      if (!tool || !tool.available) {
        unknown.push({ field, message: `Unknown tool: ${id}`, code: ContextsErrorCode.UNKNOWN_TOOL });
        return;
      }
      const missing = tool.permissions.filter((permission) => !held.has(permission));
      if (missing.length > 0) {
        forbidden.push({ field, message: `Calling ${id} requires: ${missing.join(', ')}`, code: ContextsErrorCode.TOOL_NOT_PERMITTED });
      }
    });
    if (unknown.length > 0) throw AppException.validation([...unknown, ...forbidden], 'Unknown tools');
    if (forbidden.length > 0) {
      throw new AppException(ErrorCode.FORBIDDEN, 'You may not call some of these tools', 403, forbidden);
    }
    return [...new Set(tools)];
  }
}

/** Before and after of the fields worth keeping in the audit log (metadata and settings values stay out). */
function changeDetails(before: ContextEntity, after: ContextEntity): Record<string, unknown> {
  const details: Record<string, unknown> = {};
  if (before.name !== after.name) details.name = { before: before.name, after: after.name };
  if (before.status !== after.status) details.status = { before: before.status, after: after.status };
  if (before.tools.join('\u0000') !== after.tools.join('\u0000')) details.tools = { before: before.tools, after: after.tools };
  return details;
}
