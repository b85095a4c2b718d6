import type { HttpResult } from './test-app';

const ERROR_KEYS = new Set(['error', 'message', 'details', 'timestamp', 'requestId', 'traceId']);
const DETAIL_KEYS = new Set(['field', 'message', 'code']);

/**
 * Why a response is not the contract's Error body (plus what the server always adds: `details`
 * and a request id that matches the X-Request-Id header), or null when it is.
 */
export function errorBodyProblem(res: Pick<HttpResult, 'status' | 'headers' | 'body'>): string | null {
  const body = res.body as Record<string, unknown> | string;
  if (!(res.headers.get('content-type') ?? '').startsWith('application/json')) return `content-type ${res.headers.get('content-type')}`;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'body is not a JSON object';
  const extra = Object.keys(body).filter((key) => !ERROR_KEYS.has(key));
  if (extra.length > 0) return `unexpected keys ${extra.join(', ')}`;
  if (typeof body.error !== 'string' || !/^[A-Z][A-Z_]*$/.test(body.error)) return `error ${String(body.error)}`;
  if (typeof body.message !== 'string' || body.message.length === 0) return 'message missing';
  if (typeof body.timestamp !== 'string' || Number.isNaN(Date.parse(body.timestamp))) return 'timestamp missing';
  if (typeof body.requestId !== 'string' || body.requestId !== res.headers.get('x-request-id'))
    return 'requestId missing or not the X-Request-Id';
  if (body.traceId !== undefined && typeof body.traceId !== 'string') return 'traceId not a string';
  if (!Array.isArray(body.details)) return 'details missing';
  for (const detail of body.details as unknown[]) {
    if (typeof detail !== 'object' || detail === null) return 'a detail is not an object';
    const entry = detail as Record<string, unknown>;
    if (Object.keys(entry).some((key) => !DETAIL_KEYS.has(key))) return `a detail has keys ${Object.keys(entry).join(', ')}`;
    if (typeof entry.message !== 'string') return 'a detail has no message';
    if (entry.field !== undefined && typeof entry.field !== 'string') return 'a detail field is not a string';
    if (entry.code !== undefined && typeof entry.code !== 'string') return 'a detail code is not a string';
  }
  return null;
}

/** Asserts status, Error shape and code; returns the body's details for field-level checks. */
export function expectError(res: HttpResult, status: number, code: string): Array<{ field?: string; message: string; code?: string }> {
  expect({ status: res.status, problem: errorBodyProblem(res), error: res.body?.error }).toEqual({ status, problem: null, error: code });
  return res.body.details;
}
