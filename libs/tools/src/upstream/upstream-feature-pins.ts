import type { Prompt, ResourceTemplateType } from '@modelcontextprotocol/client';
import { PinnableEntry, pinHashOf, PinnedDefinition } from './upstream-tool-definition';

/**
 * Prompts and resource templates are pinned like tools (a changed prompt is the same attack as a
 * changed tool), in the same pin table and through the same approval endpoint, under keys no
 * tool id takes: `prompt/<agent-facing name>` and `template/<agent-facing URI template>` (a "/"
 * is in no idPrefix, and MCP tool names do not use it). The pinned fields are what a model is
 * told: name, title, description, and the prompt's arguments or the template's URI and MIME type.
 */
export const PROMPT_PIN_PREFIX = 'prompt/';
export const TEMPLATE_PIN_PREFIX = 'template/';

export function promptPinEntry(upstream: string, agentName: string, prompt: Prompt): PinnableEntry {
  const pinned: PinnedDefinition = {
    upstream,
    name: prompt.name,
    title: prompt.title ?? null,
    description: prompt.description ?? null,
    inputSchema: prompt.arguments ?? null,
    outputSchema: null,
    annotations: null,
  };
  return { toolId: `${PROMPT_PIN_PREFIX}${agentName}`, upstreamName: prompt.name, pinned, hash: pinHashOf(pinned) };
}

export function templatePinEntry(upstream: string, agentUriTemplate: string, template: ResourceTemplateType): PinnableEntry {
  const pinned: PinnedDefinition = {
    upstream,
    name: template.name,
    title: template.title ?? null,
    description: template.description ?? null,
    inputSchema: { uriTemplate: template.uriTemplate, mimeType: template.mimeType ?? null },
    outputSchema: null,
    annotations: template.annotations ?? null,
  };
  return { toolId: `${TEMPLATE_PIN_PREFIX}${agentUriTemplate}`, upstreamName: template.uriTemplate, pinned, hash: pinHashOf(pinned) };
}
