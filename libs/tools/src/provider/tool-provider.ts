import type { Correlation } from '@app/core';
import type { ClientRequestRelay } from './client-request-relay';

/** A JSON Schema document (draft-07 keywords, also valid under 2020-12), compiled by ajv. */
export type JsonSchema = { [keyword: string]: unknown };

export type ToolCategory = 'system' | 'data' | 'analytics' | 'monitoring';

export const TOOL_CATEGORIES: readonly ToolCategory[] = ['system', 'data', 'analytics', 'monitoring'];

/** MCP tool annotations: hints for clients, never trusted for security decisions. */
export interface ToolAnnotations {
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

/** Fields of an MCP tool definition relayed verbatim (see ToolDefinition.mcp). */
export interface McpToolFields {
  title?: string;
  description?: string;
  outputSchema?: JsonSchema;
  annotations?: Record<string, unknown>;
  icons?: unknown[];
  _meta?: Record<string, unknown>;
}

/** What a provider says about one of its tools; the catalogue stores it and admins may override permissions and rate limit. */
export interface ToolDefinition {
  /** Stable id, e.g. `tool_filesystem`. */
  id: string;
  name: string;
  title?: string;
  description: string;
  version: string;
  category: ToolCategory;
  inputSchema: JsonSchema;
  outputSchema: JsonSchema;
  /** Permissions a caller must hold to call the tool at all. */
  permissions: string[];
  /** Default per-user limit: `requests` per `window` (`30s`, `1m`, `1h`, `1d`). */
  rateLimit: { requests: number; window: string };
  annotations?: ToolAnnotations;
  enabledByDefault?: boolean;
  /**
   * What `execute` resolves with: `structured` (default) the output itself, checked against
   * `outputSchema`; `content` a ToolResult (content blocks, structured content, isError, _meta)
   * that REST and MCP render as it is (see tool-result.ts).
   */
  resultFormat?: 'structured' | 'content';
  /**
   * The MCP tool definition's own fields, advertised to MCP agents as given instead of being
   * derived from the catalogue (federated tools: the upstream's title, description, output
   * schema, every annotation, icons and _meta; absent fields stay absent).
   */
  mcp?: McpToolFields;
  /**
   * The provider withholds the tool until an administrator acts (an upstream changed a pinned
   * definition): the tool is disabled whatever the overrides say.
   */
  pendingApproval?: boolean;
}

export interface ToolCallContext {
  /** Aborted on timeout or cancellation; tools stop their I/O and loops when it fires. */
  signal: AbortSignal;
  userId: string;
  /** The caller's effective permissions, for checks finer than the tool's own `permissions`. */
  permissions: string[];
  reportProgress?(progress: number, total?: number, message?: string): void;
  /** MCP callers: how the tool asks the calling agent for sampling, elicitation or roots (absent for REST). */
  relay?: ClientRequestRelay;
  /** The request's log correlation (request, trace, user, session): spread it into every line logged for the call. */
  correlation?: Correlation;
  /**
   * The enterprise IdP's access token the caller authenticated with, if any (IDP_SUBJECT_TOKEN):
   * only for token exchange with it as subject; never sent to an upstream, never logged.
   */
  idpToken?: string;
}

/**
 * A source of tools. The execution pipeline only talks to this interface, so built-in tools and
 * upstream MCP servers are interchangeable. `execute` resolves with the tool's output (a
 * ToolResult for `resultFormat: 'content'` tools, which may carry `isError`), or rejects with a
 * ToolError for expected failures; anything else is a fault of the provider.
 */
export interface ToolProvider {
  readonly name: string;
  listTools(): Promise<ToolDefinition[]>;
  execute(toolId: string, input: unknown, ctx: ToolCallContext): Promise<unknown>;
}
