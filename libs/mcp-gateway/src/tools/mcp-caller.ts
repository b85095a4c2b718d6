import type { ExecutionScope, SignedInActor } from '@app/core';

/**
 * Who is asking, through which endpoint: everything an MCP request handler needs to know. It is
 * the execution scope the edge resolved (the tools pipeline takes it as it is), plus the client.
 * `principal.sessionId` is the session the caller's messages and calls count in (the MCP session,
 * if any); `context` is the context endpoint in use, or the context an API key is bound to.
 */
export interface McpCaller extends ExecutionScope, Omit<SignedInActor, 'principal'> {
  /** The context's tools as a set (the tool index filters by it); null when not in a context. */
  contextTools: ReadonlySet<string> | null;
}

/** The caller of a resolved scope. */
export function mcpCallerOf(scope: ExecutionScope, client: Pick<SignedInActor, 'ipAddress' | 'userAgent'>): McpCaller {
  return {
    ...scope,
    contextTools: scope.context ? new Set(scope.context.tools) : null,
    ipAddress: client.ipAddress,
    userAgent: client.userAgent,
  };
}

/** The context a caller works in, if any. */
export function contextIdOf(caller: McpCaller): string | null {
  return caller.context?.id ?? null;
}
