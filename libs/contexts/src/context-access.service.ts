import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { AppException, Principal } from '@app/core';
import { CONTEXT_COLUMNS, ContextEntity, contextOf, ContextRow } from './context.entity';
import type { ContextSettings } from './context-settings';
import { ContextsErrorCode } from './contexts-error-codes';

/** What the execution pipeline needs of a context. */
export interface ExecutionContextInfo {
  id: string;
  tools: string[];
  settings: ContextSettings;
}

/** Owners manage their contexts; administrators manage everyone's. */
export function mayManageContext(principal: Principal, ownerId: string): boolean {
  return principal.userId === ownerId || principal.roles.includes('admin');
}

/**
 * Who may see and use a context. Anyone else gets the same 404 as for a context that does not
 * exist, so ids reveal nothing. Depends on nothing but the table, so the tools pipeline can use
 * it without a cycle (ContextAccessModule).
 */
@Injectable()
export class ContextAccessService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** The context if the principal may see it, else 404. `forUpdate` locks the row in the manager's transaction. */
  async findVisible(
    principal: Principal,
    contextId: string,
    manager: EntityManager = this.dataSource.manager,
    forUpdate = false,
  ): Promise<ContextEntity> {
    const [row]: ContextRow[] = await manager.query(
      `SELECT ${CONTEXT_COLUMNS} FROM contexts WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`,
      [contextId],
    );
    if (!row || !mayManageContext(principal, row.user_id)) throw AppException.notFound('Context not found');
    return contextOf(row);
  }

  /**
   * For running a tool in a context (REST `context`, or the context's MCP endpoint): 404 for an
   * unknown or foreign context, 403 CONTEXT_ARCHIVED for an archived one. Check the tool with
   * `assertToolInContext` next.
   */
  async resolveForExecution(principal: Principal, contextId: string): Promise<ExecutionContextInfo> {
    const context = await this.findVisible(principal, contextId);
    if (context.status === 'archived') {
      throw AppException.forbidden(`Context ${context.id} is archived; make it active to run tools in it`, ContextsErrorCode.CONTEXT_ARCHIVED);
    }
    return { id: context.id, tools: [...context.tools], settings: context.settings as ContextSettings };
  }
}
