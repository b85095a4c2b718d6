import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AppException } from '@app/core';
import { assertToolInContext, ContextAccessService } from '@app/contexts';
import { API_PREFIX } from './mcp-paths';

const EXECUTE_ROUTE = `${API_PREFIX}/tools/:id/execute`;
const CONTEXT_ROUTE = new RegExp(`^${API_PREFIX}/contexts/:id(/|$)`);

/**
 * An agent API key bound to a context reaches only that context over REST too (the MCP endpoints
 * enforce it themselves): executing a tool needs the tool to be in the context (403
 * TOOL_NOT_IN_CONTEXT; an archived context refuses), and other contexts do not exist for it (404).
 * A global guard that runs after authentication (AuthModule's guard sets the principal first).
 */
@Injectable()
export class BoundContextGuard implements CanActivate {
  constructor(private readonly contexts: ContextAccessService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return true;
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const principal = request.principal;
    if (!principal?.contextId) return true;
    const route = request.routeOptions.url ?? '';
    const params = request.params as { id?: string };
    if (route === EXECUTE_ROUTE && params.id !== undefined) {
      assertToolInContext(await this.contexts.resolveForExecution(principal, principal.contextId), params.id);
    } else if (CONTEXT_ROUTE.test(route) && params.id !== principal.contextId) {
      throw AppException.notFound('Context not found');
    }
    return true;
  }
}
