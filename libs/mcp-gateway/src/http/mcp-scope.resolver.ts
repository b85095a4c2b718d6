import { Injectable } from '@nestjs/common';
import { AppException, Principal } from '@app/core';
import { ContextAccessService } from '@app/contexts';

export interface McpScope {
  contextId: string | null;
  contextTools: ReadonlySet<string> | null;
}

const WHOLE_CATALOGUE: McpScope = { contextId: null, contextTools: null };

/**
 * Which tools an endpoint offers this caller: all of them on /api/v1/mcp, the context's on
 * /api/v1/contexts/{id}/mcp (its owner or a holder of admin:contexts:read; unknown or foreign → 404, archived → 403). An API key
 * bound to a context sees only that context, on either endpoint, and no other context.
 */
@Injectable()
export class McpScopeResolver {
  constructor(private readonly contexts: ContextAccessService) {}

  async resolve(principal: Principal, pathContextId: string | undefined): Promise<McpScope> {
    const bound = principal.contextId;
    if (pathContextId !== undefined && bound !== undefined && pathContextId !== bound) {
      throw AppException.forbidden('This API key is bound to another context');
    }
    const contextId = pathContextId ?? bound;
    if (contextId === undefined) return WHOLE_CATALOGUE;
    const context = await this.contexts.resolveForExecution(principal, contextId);
    return { contextId: context.id, contextTools: new Set(context.tools) };
  }
}
