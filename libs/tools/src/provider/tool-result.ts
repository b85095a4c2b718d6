import type { JsonSchema } from './tool-provider';

/** One MCP content block (text, image, audio, resource_link, resource, or a later kind), kept as sent. */
export interface ContentBlock {
  type: string;
  [field: string]: unknown;
}

/**
 * The transport-neutral result of a tool whose definition says `resultFormat: 'content'` (today:
 * every federated tool): MCP content blocks and/or structured content, `isError` and `_meta`,
 * exactly as the tool produced them. REST returns it as the execution's `result`; MCP returns it
 * as the `tools/call` result. Nothing is added, nothing is rewritten.
 */
export interface ToolResult {
  content: ContentBlock[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
  _meta?: Record<string, unknown>;
}

/** The JSON Schema of a ToolResult: REST's `schema.output` of content-format tools, checked on every call. */
export const TOOL_RESULT_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['content'],
  properties: {
    content: {
      type: 'array',
      description: 'MCP content blocks (text, image, audio, resource_link, resource) as the tool returned them',
      items: { type: 'object', required: ['type'], properties: { type: { type: 'string' } } },
    },
    structuredContent: { type: 'object', description: 'The structured result, when the tool sent one' },
    isError: { type: 'boolean', description: 'True when the tool reports that the call failed' },
    _meta: { type: 'object' },
  },
};

/** Only the four fields of a ToolResult, in a fresh object (protocol extras such as `resultType` are not part of it). */
export function toolResultOf(value: { content?: unknown; structuredContent?: unknown; isError?: unknown; _meta?: unknown }): ToolResult {
  const result: ToolResult = { content: Array.isArray(value.content) ? (value.content as ContentBlock[]) : [] };
  if (value.structuredContent !== undefined) result.structuredContent = value.structuredContent as Record<string, unknown>;
  if (value.isError !== undefined) result.isError = value.isError as boolean;
  if (value._meta !== undefined) result._meta = value._meta as Record<string, unknown>;
  return result;
}

export function isToolResult(value: unknown): value is ToolResult {
  return typeof value === 'object' && value !== null && Array.isArray((value as { content?: unknown }).content);
}

/** The text blocks of a result, joined: how a failed ToolResult explains itself in a REST `error.message`. */
export function textOf(result: ToolResult): string {
  return result.content
    .filter((block) => block.type === 'text' && typeof block.text === 'string')
    .map((block) => block.text as string)
    .join(' ')
    .trim();
}
