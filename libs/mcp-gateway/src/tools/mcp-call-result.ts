import type { CallToolResult } from '@modelcontextprotocol/server';
import { isToolResult } from '@app/tools';
import type { CatalogTool, ToolResult } from '@app/tools';
import { hasObjectOutput } from './mcp-tool-index';

/**
 * A completed call (error results: see errors/mcp-errors.ts). A content-format tool (every
 * federated tool) produced a ToolResult: it goes out as it came, content blocks,
 * structuredContent, isError and _meta untouched. Any other tool produced plain output: its JSON
 * as text, and as `structuredContent` when it declares an object output.
 */
export function completedResult(tool: CatalogTool, result: unknown): CallToolResult {
  if (tool.definition.resultFormat === 'content' && isToolResult(result)) return relayed(result);
  const text = JSON.stringify(result ?? null);
  if (hasObjectOutput(tool) && result !== null && typeof result === 'object' && !Array.isArray(result)) {
    return { content: [{ type: 'text', text }], structuredContent: result as Record<string, unknown> };
  }
  return { content: [{ type: 'text', text }] };
}

/** The four fields of a ToolResult, present ones only. */
export function relayed(result: ToolResult): CallToolResult {
  const out: CallToolResult = { content: result.content as CallToolResult['content'] };
  if (result.structuredContent !== undefined) out.structuredContent = result.structuredContent;
  if (result.isError !== undefined) out.isError = result.isError;
  if (result._meta !== undefined) out._meta = result._meta;
  return out;
}
