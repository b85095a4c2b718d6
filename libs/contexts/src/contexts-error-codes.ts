import { ScopeErrorCode } from '@app/core';

/** Codes the contexts answer with, on top of the core ones. */
export const ContextsErrorCode = {
  /** The context is archived: it cannot be used to run tools until it is made active again (403). */
  CONTEXT_ARCHIVED: 'CONTEXT_ARCHIVED',
  /** The tool is not one of the context's tools (403). */
  TOOL_NOT_IN_CONTEXT: ScopeErrorCode.TOOL_NOT_IN_CONTEXT,
  /** `details[].code` of a `tools[i]` that names no tool in the catalogue. */
  UNKNOWN_TOOL: 'UNKNOWN_TOOL',
  /** `details[].code` of a `tools[i]` the caller lacks the permissions to call. */
  TOOL_NOT_PERMITTED: 'TOOL_NOT_PERMITTED',
} as const;
