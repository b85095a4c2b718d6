import type { Tool } from '@modelcontextprotocol/client';
import { fingerprint } from '../common/fingerprint';
import type { JsonSchema, McpToolFields, ToolAnnotations, ToolDefinition } from '../provider/tool-provider';
import { TOOL_RESULT_SCHEMA } from '../provider/tool-result';
import type { UpstreamConfig } from './upstream-config';

/**
 * The fields of an upstream tool that decide what a model is told and what it may send:
 * changing any of them is what pinning catches. The upstream's name is part of it, so a tool id
 * that moves to another upstream needs approval too.
 */
export interface PinnedDefinition {
  upstream: string;
  name: string;
  title: string | null;
  description: string | null;
  inputSchema: unknown;
  outputSchema: unknown;
  annotations: unknown;
}

export const PINNED_FIELDS = ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const;

/** One upstream tool as the provider keeps it: what the catalogue gets and what pinning compares. */
export interface UpstreamToolEntry {
  /** Catalogue id: the upstream's idPrefix + its tool name. */
  toolId: string;
  upstreamName: string;
  pinned: PinnedDefinition;
  /** Hash of `pinned`: what an administrator approves. */
  hash: string;
  hasOutputSchema: boolean;
  /** The catalogue definition, without the approval state (the provider adds it). */
  definition: ToolDefinition;
  /** The upstream's definition as it listed it: what calls of the tool are made against (see UpstreamToolProvider.execute). */
  listed: Tool;
}

/** What pinning needs of an entry (a tool, or a federated prompt or resource template: see upstream-feature-pins.ts). */
export type PinnableEntry = Pick<UpstreamToolEntry, 'toolId' | 'upstreamName' | 'pinned' | 'hash'>;

export function pinnedDefinitionOf(upstream: string, tool: Tool): PinnedDefinition {
  return {
    upstream,
    name: tool.name,
    title: tool.title ?? null,
    description: tool.description ?? null,
    inputSchema: tool.inputSchema ?? null,
    outputSchema: tool.outputSchema ?? null,
    annotations: tool.annotations ?? null,
  };
}

export function pinHashOf(pinned: PinnedDefinition): string {
  return fingerprint(pinned);
}

/** Which pinned fields differ between two definitions (for the audit record and the admin's review). */
export function changedFields(before: PinnedDefinition | null, after: PinnedDefinition): string[] {
  if (!before) return [...PINNED_FIELDS];
  const changed: string[] = before.upstream !== after.upstream ? ['upstream'] : [];
  for (const field of PINNED_FIELDS) if (fingerprint(before[field]) !== fingerprint(after[field])) changed.push(field);
  return changed;
}

/** The catalogue entry for an upstream tool, or why it cannot be one. */
export function upstreamToolEntryOf(
  config: UpstreamConfig,
  tool: Tool,
  serverVersion: string | undefined,
): UpstreamToolEntry | { problem: string } {
  if (typeof tool?.name !== 'string' || tool.name.length === 0) return { problem: 'a tool without a name' };
  if (!isObject(tool.inputSchema)) return { problem: `tool "${tool.name}" has no input schema object` };
  if (tool.outputSchema !== undefined && !isObject(tool.outputSchema))
    return { problem: `tool "${tool.name}" has a malformed output schema` };
  const pinned = pinnedDefinitionOf(config.name, tool);
  const hasOutputSchema = tool.outputSchema !== undefined;
  const definition: ToolDefinition = {
    id: `${config.idPrefix}${tool.name}`,
    name: tool.name,
    title: tool.title ?? (typeof tool.annotations?.title === 'string' ? tool.annotations.title : undefined),
    description: tool.description ?? '',
    version: serverVersion && serverVersion.length <= 64 ? serverVersion : '0.0.0',
    category: config.category,
    inputSchema: structuredClone(tool.inputSchema) as JsonSchema,
    // REST's `result` of a federated tool is the upstream's result itself (content blocks and all).
    outputSchema: TOOL_RESULT_SCHEMA,
    permissions: [...config.permissions],
    rateLimit: { ...config.rateLimit },
    annotations: hintsOf(tool.annotations),
    enabledByDefault: config.enabled,
    resultFormat: 'content',
    mcp: mcpFieldsOf(tool),
  };
  return { toolId: definition.id, upstreamName: tool.name, pinned, hash: pinHashOf(pinned), hasOutputSchema, definition, listed: tool };
}

/**
 * What MCP agents are shown of the upstream's definition, as the upstream wrote it: present
 * fields only (no invented title or output schema), every annotation, icons and _meta.
 */
function mcpFieldsOf(tool: Tool): McpToolFields {
  const fields: McpToolFields = {};
  if (tool.title !== undefined) fields.title = tool.title;
  if (tool.description !== undefined) fields.description = tool.description;
  if (tool.outputSchema !== undefined) fields.outputSchema = structuredClone(tool.outputSchema) as JsonSchema;
  if (tool.annotations !== undefined) fields.annotations = structuredClone(tool.annotations) as Record<string, unknown>;
  if (tool.icons !== undefined) fields.icons = structuredClone(tool.icons) as unknown[];
  if (tool._meta !== undefined) fields._meta = structuredClone(tool._meta) as Record<string, unknown>;
  return fields;
}

/** Only the four boolean hints the catalogue knows; they stay hints, never security decisions. */
function hintsOf(annotations: Tool['annotations']): ToolAnnotations {
  const hints: ToolAnnotations = {};
  for (const key of ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const) {
    const value = (annotations as Record<string, unknown> | undefined)?.[key];
    if (typeof value === 'boolean') hints[key] = value;
  }
  return hints;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
