import { ProtocolError } from '@modelcontextprotocol/server';
import type { CallToolResult } from '@modelcontextprotocol/server';
import type { AppException, ErrorDetail } from '@app/core';
import { isToolResult } from '@app/tools';
import type { CatalogTool, ExecutionError, ToolResult } from '@app/tools';
import { advertisedOutputSchema, hasObjectOutput } from './mcp-tool-index';

/**
 * A completed call. A content-format tool (every federated tool) produced a ToolResult: it goes
 * out as it came, content blocks, structuredContent, isError and _meta untouched. Any other tool
 * produced plain output: its JSON as text, and as `structuredContent` when it declares an object output.
 */
export function completedResult(tool: CatalogTool, result: unknown): CallToolResult {
  if (tool.definition.resultFormat === 'content' && isToolResult(result)) return relayed(result);
  const text = JSON.stringify(result ?? null);
  if (hasObjectOutput(tool) && result !== null && typeof result === 'object' && !Array.isArray(result)) {
    return { content: [{ type: 'text', text }], structuredContent: result as Record<string, unknown> };
  }
  return { content: [{ type: 'text', text }] };
}

/**
 * A call that could not run or did not complete: `isError` with a message the model can act on,
 * prefixed with our error code (the error is the gateway's, and says so), and the same error as
 * `structuredContent` for tools that advertise an output schema (clients do not validate error
 * results against it).
 */
export function errorResult(tool: CatalogTool, code: string, message: string, details: ErrorDetail[] = []): CallToolResult {
  const lines = [message, ...details.map((d) => `- ${d.field ? `${d.field}: ` : ''}${d.message}`)];
  const result: CallToolResult = { isError: true, content: [{ type: 'text', text: `${code}: ${lines.join('\n')}` }] };
  if (advertisedOutputSchema(tool)) result.structuredContent = { error: { code, message, ...(details.length > 0 ? { details } : {}) } };
  return result;
}

/**
 * A call that ran and failed. The tool's own error result (an upstream's `isError`) goes out as
 * it came; an upstream's JSON-RPC error is thrown as that error (the SDK answers it as a JSON-RPC
 * error with the upstream's code, message and data); every other failure is the gateway's own.
 */
export function failedResult(tool: CatalogTool, error: ExecutionError | null, result: unknown = null): CallToolResult {
  if (error?.rpc) throw new ProtocolError(error.rpc.code, error.rpc.message, error.rpc.data);
  if (tool.definition.resultFormat === 'content' && isToolResult(result) && result.isError === true) return relayed(result);
  return errorResult(tool, error?.code ?? 'TOOL_FAILED', error?.message ?? 'The tool failed', error?.details ?? []);
}

/** A refusal of the pipeline (disabled, forbidden, rate limited, invalid parameters) as a tool error. */
export function refusedResult(tool: CatalogTool, refusal: AppException): CallToolResult {
  const retryAfter = refusal.headers['Retry-After'];
  const message = retryAfter ? `${refusal.message} (retry after ${retryAfter} s)` : refusal.message;
  return errorResult(tool, String(refusal.code), message, refusal.details);
}

/** The four fields of a ToolResult, present ones only. */
function relayed(result: ToolResult): CallToolResult {
  const out: CallToolResult = { content: result.content as CallToolResult['content'] };
  if (result.structuredContent !== undefined) out.structuredContent = result.structuredContent;
  if (result.isError !== undefined) out.isError = result.isError;
  if (result._meta !== undefined) out._meta = result._meta;
  return out;
}
