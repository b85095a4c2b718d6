import type { JsonSchema, ToolAnnotations, ToolCategory, ToolDefinition } from '../provider/tool-provider';
import { CatalogTool, ToolOverrides, windowMsOf } from './catalog-tool';

/** A `tools` row as the driver returns it. */
export interface ToolRow {
  id: string;
  name: string;
  description: string;
  version: string;
  category: ToolCategory;
  enabled: boolean;
  input_schema: JsonSchema;
  output_schema: JsonSchema;
  permissions: string[];
  rate_limit_requests: number;
  rate_limit_window: string;
  provider: string;
  annotations: ToolAnnotations;
  definition: ToolDefinition;
  definition_hash: string;
  overrides: ToolOverrides;
  available: boolean;
  created_at: Date;
  updated_at: Date;
}

export const TOOL_COLUMNS = `id, name, description, version, category, enabled, input_schema, output_schema, permissions,
  rate_limit_requests, rate_limit_window, provider, annotations, definition, definition_hash, overrides, available,
  created_at, updated_at`;

export function catalogToolOf(row: ToolRow): CatalogTool {
  const rateLimit = { requests: row.rate_limit_requests, window: row.rate_limit_window };
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    version: row.version,
    category: row.category,
    enabled: row.enabled,
    available: row.available,
    inputSchema: row.input_schema,
    outputSchema: row.output_schema,
    permissions: [...row.permissions],
    rateLimit,
    rateWindowMs: windowMsOf(rateLimit),
    provider: row.provider,
    annotations: row.annotations ?? {},
    definition: row.definition,
    definitionHash: row.definition_hash,
    overrides: row.overrides ?? {},
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}
