import type { SignedInActor } from '@app/core';

/** Who is asking, through which endpoint: everything an MCP request handler needs to know. */
export interface McpCaller extends SignedInActor {
  /** `principal.sessionId` is the session the caller's messages and calls count in (the MCP session, if any). */
  /** The context endpoint in use (or the context an API key is bound to); null for /api/v1/mcp. */
  contextId: string | null;
  /** That context's tools; null when not in a context. */
  contextTools: ReadonlySet<string> | null;
}
