import { DataSource } from 'typeorm';
import { http, HttpResult, TestApp } from '../support/test-app';

export const PASSWORD = 'Tr0ub4dor&Zebra9';
export const ADMIN_EMAIL = 'admin@tools.example.com';

/** Environment for the tools suites: fast hashing, a first admin, general limits out of the way. */
export function toolsEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    BCRYPT_COST: '4',
    ADMIN_EMAIL,
    ADMIN_PASSWORD: PASSWORD,
    AUTH_RATE_LIMIT: '100000',
    RATE_LIMIT: '100000',
    ...extra,
  };
}

export interface Caller {
  userId: string;
  token: string;
  sessionId: string;
}

/** The session id is the token's `sid` claim. */
export function sessionOf(token: string): string {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')).sid;
}

export async function login(t: TestApp, email: string): Promise<Caller> {
  const res = await http(t.baseUrl, 'POST', '/api/v1/auth/login', { body: { email, password: PASSWORD } });
  if (res.status !== 200) throw new Error(`login ${email}: ${res.status} ${res.text}`);
  return { userId: res.body.user.id, token: res.body.accessToken, sessionId: sessionOf(res.body.accessToken) };
}

/** Registers (a plain `user`) and logs in. */
export async function signUp(t: TestApp, email: string): Promise<Caller> {
  const res = await http(t.baseUrl, 'POST', '/api/v1/auth/register', { body: { email, password: PASSWORD, name: email.split('@')[0] } });
  if (res.status !== 201) throw new Error(`register ${email}: ${res.status} ${res.text}`);
  return login(t, email);
}

export function execute(t: TestApp, caller: Caller, toolId: string, body: Record<string, unknown>): Promise<HttpResult> {
  return http(t.baseUrl, 'POST', `/api/v1/tools/${toolId}/execute`, { token: caller.token, body });
}

export function updateTool(t: TestApp, admin: Caller, toolId: string, body: Record<string, unknown>): Promise<HttpResult> {
  return http(t.baseUrl, 'PUT', `/api/v1/admin/tools/${toolId}`, { token: admin.token, body });
}

/** Polls GET /tools/executions/{id} until the execution has finished (or the deadline passes). */
export async function waitForExecution(t: TestApp, caller: Caller, executionId: string, timeoutMs = 15_000): Promise<HttpResult> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await http(t.baseUrl, 'GET', `/api/v1/tools/executions/${executionId}`, { token: caller.token });
    if (res.status !== 200 || ['completed', 'failed'].includes(res.body.status) || Date.now() > deadline) return res;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
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

export async function auditFor(db: DataSource, executionId: string): Promise<Array<{ action: string; result: string; user_id: string; details: any }>> {
  return db.query(`SELECT action, result, user_id, details FROM audit_logs WHERE action = 'tool.execute' AND details->>'executionId' = $1`, [
    executionId,
  ]);
}
