import type { CallToolResult } from '@modelcontextprotocol/server';
import type { CatalogTool } from '@app/tools';
import { hasObjectOutput } from './mcp-tool-index';

/** A completed call (error results: see errors/mcp-errors.ts): the result as JSON text, and as `structuredContent` when the tool declares an object output. */
export function completedResult(tool: CatalogTool, result: unknown): CallToolResult {
  const text = JSON.stringify(result ?? null);
  if (hasObjectOutput(tool) && result !== null && typeof result === 'object' && !Array.isArray(result)) {
    return { content: [{ type: 'text', text }], structuredContent: result as Record<string, unknown> };
  }
  return { content: [{ type: 'text', text }] };
}
