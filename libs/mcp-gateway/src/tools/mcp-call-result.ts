import type { CallToolResult } from '@modelcontextprotocol/server';
import type { AppException, ErrorDetail } from '@app/core';
import type { CatalogTool, ExecutionError } from '@app/tools';
import { hasObjectOutput } from './mcp-tool-index';

/** A completed call: the result as JSON text, and as `structuredContent` when the tool declares an object output. */
export function completedResult(tool: CatalogTool, result: unknown): CallToolResult {
  const text = JSON.stringify(result ?? null);
  if (hasObjectOutput(tool) && result !== null && typeof result === 'object' && !Array.isArray(result)) {
    return { content: [{ type: 'text', text }], structuredContent: result as Record<string, unknown> };
  }
  return { content: [{ type: 'text', text }] };
}

/**
 * A call that could not run or did not complete: `isError` with a message the model can act on,
 * and the same error as `structuredContent` for tools with an output schema (clients do not
 * validate error results against it).
 */
export function errorResult(tool: CatalogTool, code: string, message: string, details: ErrorDetail[] = []): CallToolResult {
  const lines = [message, ...details.map((d) => `- ${d.field ? `${d.field}: ` : ''}${d.message}`)];
  const result: CallToolResult = { isError: true, content: [{ type: 'text', text: `${code}: ${lines.join('\n')}` }] };
  if (hasObjectOutput(tool)) result.structuredContent = { error: { code, message, ...(details.length > 0 ? { details } : {}) } };
  return result;
}

export function failedResult(tool: CatalogTool, error: ExecutionError | null): CallToolResult {
  return errorResult(tool, error?.code ?? 'TOOL_FAILED', error?.message ?? 'The tool failed', error?.details ?? []);
}

/** A refusal of the pipeline (disabled, forbidden, rate limited, invalid parameters) as a tool error. */
export function refusedResult(tool: CatalogTool, refusal: AppException): CallToolResult {
  const retryAfter = refusal.headers['Retry-After'];
  const message = retryAfter ? `${refusal.message} (retry after ${retryAfter} s)` : refusal.message;
  return errorResult(tool, String(refusal.code), message, refusal.details);
}
