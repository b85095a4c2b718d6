import { DataSource } from 'typeorm';
import { Caller, identityEnv } from '../support/identity';
import { eventually } from '../support/polling';
import { http, HttpResult, TestApp } from '../support/test-app';

// The identity part lives in test/support/identity.ts; re-exported for the suites that import it from here.
export { ADMIN_EMAIL, login, PASSWORD, sessionOf, signUp } from '../support/identity';
export type { Caller } from '../support/identity';

/** Environment for the tools suites: the shared one (fast hashing, a first admin, general limits out of the way). */
export const toolsEnv = identityEnv;

export function execute(t: TestApp, caller: Caller, toolId: string, body: Record<string, unknown>): Promise<HttpResult> {
  return http(t.baseUrl, 'POST', `/api/v1/tools/${toolId}/execute`, { token: caller.token, body });
}

export function updateTool(t: TestApp, admin: Caller, toolId: string, body: Record<string, unknown>): Promise<HttpResult> {
  return http(t.baseUrl, 'PUT', `/api/v1/admin/tools/${toolId}`, { token: admin.token, body });
}

/** Polls GET /tools/executions/{id} until the execution has finished (or the deadline passes); returns the last answer. */
export function waitForExecution(t: TestApp, caller: Caller, executionId: string, timeoutMs = 15_000): Promise<HttpResult> {
  return eventually(
    () => http(t.baseUrl, 'GET', `/api/v1/tools/executions/${executionId}`, { token: caller.token }),
    (res) => res.status !== 200 || ['completed', 'failed'].includes(res.body.status),
    timeoutMs,
  );
}

export interface ExecutionRecord {
  id: string;
  tool_id: string;
  user_id: string;
  session_id: string | null;
  request_id: string | null;
  status: string;
  async: boolean;
  input: unknown;
  result: unknown;
  error: { code: string; message: string } | null;
  attempts: number;
  duration_ms: number | null;
}

export async function executionRow(db: DataSource, id: string): Promise<ExecutionRecord | undefined> {
  const [row] = await db.query(`SELECT * FROM tool_executions WHERE id = $1`, [id]);
  return row;
}

export async function auditFor(
  db: DataSource,
  executionId: string,
): Promise<Array<{ action: string; result: string; user_id: string; details: any }>> {
  return db.query(
    `SELECT action, result, user_id, details FROM audit_logs WHERE action = 'tool.execute' AND details->>'executionId' = $1`,
    [executionId],
  );
}
