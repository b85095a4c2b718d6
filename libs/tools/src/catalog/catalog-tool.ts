import type { JsonSchema, ToolAnnotations, ToolCategory, ToolDefinition } from '../provider/tool-provider';
import { rateWindowMs } from '@app/core';

export interface RateLimit {
  requests: number;
  window: string;
}

/** What an administrator changed; each field absent means "the provider's default". */
export interface ToolOverrides {
  enabled?: boolean;
  permissions?: string[];
  rateLimit?: RateLimit;
}

/** A tool as the pipeline sees it: the provider's definition with the admin's overrides applied. */
export interface CatalogTool {
  id: string;
  name: string;
  description: string;
  version: string;
  category: ToolCategory;
  enabled: boolean;
  /** False once its provider stopped listing it: kept for the record, never callable. */
  available: boolean;
  inputSchema: JsonSchema;
  outputSchema: JsonSchema;
  permissions: string[];
  rateLimit: RateLimit;
  rateWindowMs: number;
  provider: string;
  annotations: ToolAnnotations;
  definition: ToolDefinition;
  definitionHash: string;
  overrides: ToolOverrides;
  createdAt: Date;
  updatedAt: Date;
}

/** The effective settings: override where the admin set one, else the provider's default. */
export function effectiveSettings(
  definition: ToolDefinition,
  overrides: ToolOverrides,
): { enabled: boolean; permissions: string[]; rateLimit: RateLimit } {
  return {
    enabled: definition.pendingApproval ? false : (overrides.enabled ?? definition.enabledByDefault ?? true),
    permissions: [...(overrides.permissions ?? definition.permissions)],
    rateLimit: { ...(overrides.rateLimit ?? definition.rateLimit) },
  };
}

/** Window length of a stored rate limit; a malformed one (never written by us) counts as one minute. */
export function windowMsOf(rateLimit: RateLimit): number {
  return rateWindowMs(rateLimit.window) ?? 60_000;
}
