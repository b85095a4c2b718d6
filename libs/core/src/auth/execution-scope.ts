import type { Principal } from './principal';
import type { Correlation } from '../logging/correlation';
import { AppException } from '../errors/app.exception';

/** A context's budget: at most `requests` tool calls per `window` (`30s`, `1m`, `1h`, `1d`; see rateWindowMs). */
export interface ScopeRateLimit {
  requests: number;
  window: string;
}

/** The context a call runs in, as the pipeline needs it: which tools, and the settings it applies. */
export interface ScopeContext {
  id: string;
  tools: readonly string[];
  settings: {
    /** Timeout of calls that give none (milliseconds). */
    defaultTimeoutMs?: number;
    /** The context's own budget, on top of each tool's per-user limit. */
    rateLimit?: ScopeRateLimit;
  };
}

/**
 * Who is calling and where, resolved once at the edge (the REST controller, the MCP HTTP endpoint,
 * the MCP WebSocket per message) and handed to the execution pipeline, which never looks a
 * context up itself. `principal.permissions` are the effective permissions (an API key's subset).
 * `context` is the context asked for, or the one an API key is bound to; null: the whole catalogue.
 */
export interface ExecutionScope {
  principal: Principal;
  context: ScopeContext | null;
  /** The request's log correlation (request, trace, user, session), for every line logged on its behalf. */
  correlation?: Correlation;
}

/**
 * Resolves a caller's execution scope (implemented by the contexts library, which owns the
 * table): the context asked for, else the one the credential is bound to. Refuses a bound
 * credential asking for another context (403), a context the caller may not see (404) and an
 * archived one (403 CONTEXT_ARCHIVED).
 */
export abstract class ExecutionScopeResolver {
  abstract resolve(principal: Principal, requestedContextId?: string): Promise<ExecutionScope>;
}

/** Codes the scope checks answer with. */
export const ScopeErrorCode = {
  /** The tool is not one of the context's tools (403). */
  TOOL_NOT_IN_CONTEXT: 'TOOL_NOT_IN_CONTEXT',
} as const;

/** Refuses (403 TOOL_NOT_IN_CONTEXT) a tool that is not one of the context's tools. */
export function assertToolInContext(context: Pick<ScopeContext, 'id' | 'tools'>, toolId: string): void {
  if (!context.tools.includes(toolId)) {
    throw AppException.forbidden(`Tool ${toolId} is not available in context ${context.id}`, ScopeErrorCode.TOOL_NOT_IN_CONTEXT);
  }
}
