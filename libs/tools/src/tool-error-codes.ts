/**
 * Codes the execution pipeline answers with, on top of the core ones (NOT_FOUND, FORBIDDEN,
 * VALIDATION_ERROR, RATE_LIMIT_EXCEEDED). Refusals are thrown as AppException with these; a
 * call that ran and failed carries a code in its execution's `error` instead (the tool's own
 * ToolError codes, or the pipeline's below).
 */
export const ToolsErrorCode = {
  /** The tool exists but an administrator disabled it (403). */
  TOOL_DISABLED: 'TOOL_DISABLED',
  /** `context.sessionId` is not an active session of the caller (400). */
  INVALID_SESSION: 'INVALID_SESSION',
  /** The `requestId` was used before by this caller for a different call (409). */
  IDEMPOTENCY_KEY_REUSED: 'IDEMPOTENCY_KEY_REUSED',
  /** Enabling a tool whose changed upstream definition awaits approval (409): approve it instead. */
  TOOL_PENDING_APPROVAL: 'TOOL_PENDING_APPROVAL',
  /** The caller already has TOOLS_QUEUE_MAX_PENDING_PER_USER async executions waiting to start (429). */
  QUEUE_FULL: 'QUEUE_FULL',
} as const;

/** Codes of `failed` executions that the pipeline itself decides (not the tool). */
export const ExecutionFailureCode = {
  /** The tool returned something its output schema does not allow. */
  INVALID_OUTPUT: 'INVALID_OUTPUT',
  /** The tool failed in a way it did not describe (a bug or an unexpected fault); details are in the log only. */
  TOOL_FAILED: 'TOOL_FAILED',
  /** The process running the call stopped before it finished, and the call is not retried. */
  INTERRUPTED: 'INTERRUPTED',
  /** A queued call ran out of attempts (each ended by an expired lease). */
  ATTEMPTS_EXHAUSTED: 'ATTEMPTS_EXHAUSTED',
  /** Checked again when a queued call starts: the tool was disabled, removed or the caller lost access meanwhile. */
  TOOL_DISABLED: 'TOOL_DISABLED',
  TOOL_UNAVAILABLE: 'TOOL_UNAVAILABLE',
  FORBIDDEN: 'FORBIDDEN',
} as const;
