import type { Tool } from '@modelcontextprotocol/client';
import { fingerprint } from '../common/fingerprint';
import type { CatalogTool } from '../catalog/catalog-tool';
import type { JsonSchema, ToolAnnotations, ToolDefinition } from '../provider/tool-provider';
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

/**
 * Result shape of an upstream tool without an output schema: the MCP content blocks as the
 * upstream sent them (and its structured content, if any). A tool with an output schema
 * returns its structured content itself, checked against that schema.
 */
export const CONTENT_RESULT_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['content'],
  properties: {
    content: {
      type: 'array',
      description: 'MCP content blocks (text, image, audio, resource_link, resource) as the upstream returned them',
      items: { type: 'object', required: ['type'], properties: { type: { type: 'string' } } },
    },
    structuredContent: { description: 'The upstream\'s structured result, when it sent one' },
  },
};

const CONTENT_RESULT_FINGERPRINT = fingerprint(CONTENT_RESULT_SCHEMA);

/**
 * For the MCP gateway: the upstream's own result of a federated tool that has no output schema
 * (its execution result is `{ content, structuredContent? }`), so it can be relayed to agents as
 * it came instead of as JSON text of itself. Undefined for every other tool.
 */
export function upstreamContentOf(
  tool: Pick<CatalogTool, 'provider' | 'outputSchema'>,
  result: unknown,
): { content: Array<Record<string, unknown>>; structuredContent?: unknown } | undefined {
  if (!tool.provider.startsWith('upstream:') || fingerprint(tool.outputSchema) !== CONTENT_RESULT_FINGERPRINT) return undefined;
  const candidate = result as { content?: unknown; structuredContent?: unknown } | null;
  if (!candidate || !Array.isArray(candidate.content)) return undefined;
  return candidate.structuredContent === undefined
    ? { content: candidate.content }
    : { content: candidate.content, structuredContent: candidate.structuredContent };
}

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
}

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
  if (tool.outputSchema !== undefined && !isObject(tool.outputSchema)) return { problem: `tool "${tool.name}" has a malformed output schema` };
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
    outputSchema: hasOutputSchema ? (structuredClone(tool.outputSchema) as JsonSchema) : CONTENT_RESULT_SCHEMA,
    permissions: [...config.permissions],
    rateLimit: { ...config.rateLimit },
    annotations: hintsOf(tool.annotations),
    enabledByDefault: config.enabled,
  };
  return { toolId: definition.id, upstreamName: tool.name, pinned, hash: pinHashOf(pinned), hasOutputSchema, definition };
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
