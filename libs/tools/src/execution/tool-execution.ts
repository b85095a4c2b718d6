import type { Actor, Correlation, ErrorDetail } from '@app/core';
import type { ClientRequestRelay } from '../provider/client-request-relay';
import type { RpcError } from '../provider/tool-error';

export type ExecutionStatus = 'pending' | 'running' | 'completed' | 'failed';

/** Why a call that ran did not complete; written for the caller (no stack traces, no host paths). */
export interface ExecutionError {
  code: string;
  message: string;
  details?: ErrorDetail[];
  /** The upstream's own JSON-RPC error, when that is how the call failed (MCP relays it as that error). */
  rpc?: RpcError;
}

/** One tool call, as recorded in `tool_executions`. */
export interface ToolExecution {
  id: string;
  toolId: string;
  userId: string;
  sessionId: string | null;
  requestId: string | null;
  requestHash: string | null;
  status: ExecutionStatus;
  async: boolean;
  input: unknown;
  result: unknown;
  error: ExecutionError | null;
  timeoutMs: number;
  ipAddress: string | null;
  userAgent: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  durationMs: number | null;
  attempts: number;
  /** Of a queued call made with a narrower credential (an API key): the most its run may use. */
  callerPermissions?: string[] | null;
}

/** What a caller asks for (the REST body; the MCP gateway builds the same from `tools/call`). */
export interface ExecuteToolRequest {
  parameters: unknown;
  /** `contextId` (extension): run in that context (resolved by the edge into the ExecutionScope, not by the pipeline). */
  context?: { sessionId?: string; requestId?: string; contextId?: string };
  options?: { timeout?: number; async?: boolean };
}

/** Where the call came from, for the audit record and the execution row. */
export interface ExecutionMeta extends Actor {
  /** Progress notifications of long tools (MCP relays them; REST has nowhere to send them). */
  reportProgress?: (progress: number, total?: number, message?: string) => void;
  /** Cancels a synchronous call from outside (MCP: the client cancelled the request or went away). */
  signal?: AbortSignal;
  /** MCP: the calling agent, for the server→client requests a tool makes (sampling, elicitation, roots). */
  relay?: ClientRequestRelay;
  /** The request's log correlation (from the scope), for the lines the run logs. */
  correlation?: Correlation;
}
