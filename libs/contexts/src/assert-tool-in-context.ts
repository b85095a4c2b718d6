import { AppException } from '@app/core';
import type { ExecutionContextInfo } from './context-access.service';
import { ContextsErrorCode } from './contexts-error-codes';

/** Refuses (403 TOOL_NOT_IN_CONTEXT) a tool that is not one of the context's tools. */
export function assertToolInContext(context: Pick<ExecutionContextInfo, 'id' | 'tools'>, toolId: string): void {
  if (!context.tools.includes(toolId)) {
    throw AppException.forbidden(`Tool ${toolId} is not available in context ${context.id}`, ContextsErrorCode.TOOL_NOT_IN_CONTEXT);
  }
}
