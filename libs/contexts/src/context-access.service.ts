import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AppException, ExecutionScope, ExecutionScopeResolver, Permission, Principal } from '@app/core';
import type { Context } from './context';
import { ContextRepository } from './context.repository';
import type { ContextSettings } from './context-settings';
import { ContextsErrorCode } from './contexts-error-codes';

/** What the execution pipeline needs of a context. */
export interface ExecutionContextInfo {
  id: string;
  tools: string[];
  settings: ContextSettings;
}

/**
 * Who may see (and run tools in) a context: its owner, or a holder of admin:contexts:read. A key
 * bound to a context sees that context and no other, whoever owns them.
 */
export function maySeeContext(principal: Principal, context: Pick<Context, 'id' | 'userId'>): boolean {
  if (principal.contextId !== undefined && principal.contextId !== context.id) return false;
  return principal.userId === context.userId || principal.permissions.includes(Permission.ADMIN_CONTEXTS_READ);
}

/** Who may change or delete a context: its owner, or a holder of admin:contexts:write. */
export function mayChangeContext(principal: Principal, context: Pick<Context, 'id' | 'userId'>): boolean {
  return (
    maySeeContext(principal, context) &&
    (principal.userId === context.userId || principal.permissions.includes(Permission.ADMIN_CONTEXTS_WRITE))
  );
}

/**
 * Who may see and use a context. Anyone else gets the same 404 as for a context that does not
 * exist, so ids reveal nothing. Also the ExecutionScopeResolver every edge (REST, MCP HTTP, MCP
 * WebSocket) asks for a caller's scope, so the tools pipeline never imports this library.
 */
@Injectable()
export class ContextAccessService implements ExecutionScopeResolver {
  constructor(private readonly contexts: ContextRepository) {}

  /**
   * The context if the principal may see it, else 404. `forUpdate` (a change is coming) locks the
   * row in the manager's transaction and needs the right to change it (403 when only seen).
   */
  async findVisible(principal: Principal, contextId: string, manager?: EntityManager, forUpdate = false): Promise<Context> {
    const context = await this.contexts.findById(contextId, manager, forUpdate);
    if (!context || !maySeeContext(principal, context)) throw AppException.notFound('Context not found');
    if (forUpdate && !mayChangeContext(principal, context)) throw AppException.forbidden('You may see this context but not change it');
    return context;
  }

  /**
   * The caller's execution scope: the context asked for, else the one the credential is bound to,
   * else none (the whole catalogue). A credential bound to a context asking for another one is
   * refused before any lookup (403), the same on every transport.
   */
  async resolve(principal: Principal, requestedContextId?: string): Promise<ExecutionScope> {
    const bound = principal.contextId;
    if (requestedContextId !== undefined && bound !== undefined && requestedContextId !== bound) {
      throw AppException.forbidden('This API key is bound to another context');
    }
    const contextId = requestedContextId ?? bound;
    if (contextId === undefined) return { principal, context: null };
    return { principal, context: await this.resolveForExecution(principal, contextId) };
  }

  /**
   * For running a tool in a context (REST `context`, or the context's MCP endpoint): 404 for an
   * unknown or foreign context, 403 CONTEXT_ARCHIVED for an archived one. Check the tool with
   * `assertToolInContext` next.
   */
  async resolveForExecution(principal: Principal, contextId: string): Promise<ExecutionContextInfo> {
    const context = await this.findVisible(principal, contextId);
    if (context.status === 'archived') {
      throw AppException.forbidden(
        `Context ${context.id} is archived; make it active to run tools in it`,
        ContextsErrorCode.CONTEXT_ARCHIVED,
      );
    }
    return { id: context.id, tools: [...context.tools], settings: context.settings as ContextSettings };
  }
}
