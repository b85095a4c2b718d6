import type { ExecutionError, ExecutionStatus, ToolExecution } from './tool-execution';

/** A `tool_executions` row as the driver returns it. */
export interface ToolExecutionRow {
  id: string;
  tool_id: string;
  user_id: string;
  session_id: string | null;
  request_id: string | null;
  request_hash: string | null;
  status: ExecutionStatus;
  async: boolean;
  input: unknown;
  result: unknown;
  error: ExecutionError | null;
  timeout_ms: number;
  ip_address: string | null;
  user_agent: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  duration_ms: number | null;
  attempts: number;
}

export const EXECUTION_COLUMNS = `id, tool_id, user_id, session_id, request_id, request_hash, status, async, input, result, error,
  timeout_ms, ip_address, user_agent, created_at, started_at, finished_at, duration_ms, attempts`;

/**
 * Every column of `tool_executions` (checked against the migrations by the schema-drift test):
 * the row above, then what only the queue reads and writes (ToolExecutionRepository).
 */
export const TOOL_EXECUTIONS_COLUMNS = `${EXECUTION_COLUMNS}, payload, caller_permissions, locked_by, locked_until`;

const dateOrNull = (value: Date | string | null): Date | null => (value === null ? null : new Date(value));

export function executionOf(row: ToolExecutionRow): ToolExecution {
  return {
    id: row.id,
    toolId: row.tool_id,
    userId: row.user_id,
    sessionId: row.session_id,
    requestId: row.request_id,
    requestHash: row.request_hash,
    status: row.status,
    async: row.async,
    input: row.input,
    result: row.result,
    error: row.error,
    timeoutMs: row.timeout_ms,
    ipAddress: row.ip_address,
    userAgent: row.user_agent,
    createdAt: new Date(row.created_at),
    startedAt: dateOrNull(row.started_at),
    finishedAt: dateOrNull(row.finished_at),
    durationMs: row.duration_ms === null ? null : Number(row.duration_ms),
    attempts: row.attempts,
  };
}
