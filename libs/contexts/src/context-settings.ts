// The tools' own window syntax (in core), so a context's limit reads like a tool's.
import { ErrorDetail, rateWindowMs } from '@app/core';

/** A per-context budget: at most `requests` tool calls per `window` (`30s`, `1m`, `1h`, `1d`; at most 7d). */
export interface ContextRateLimit {
  requests: number;
  window: string;
}

/**
 * A context's settings. The keys below are understood and validated; any other key is kept as
 * given for clients' own use.
 */
export interface ContextSettings {
  /** Timeout of tool calls made in the context that give none (milliseconds, within the server's maximum). */
  defaultTimeoutMs?: number;
  /** Budget of tool calls made in the context, on top of each tool's own per-user limit. */
  rateLimit?: ContextRateLimit;
  [key: string]: unknown;
}

export const MAX_CONTEXT_RATE_REQUESTS = 1_000_000;

/** Problems with the understood settings (one detail each), given the server's maximum tool timeout. */
export function settingsProblems(settings: Record<string, unknown>, maxTimeoutMs: number): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  const detail = (field: string, message: string): void => {
    problems.push({ field: `settings.${field}`, message, code: 'invalidSetting' });
  };

  if (Object.hasOwn(settings, 'defaultTimeoutMs')) {
    const timeout = settings.defaultTimeoutMs;
    if (!Number.isInteger(timeout) || (timeout as number) < 1 || (timeout as number) > maxTimeoutMs) {
      detail('defaultTimeoutMs', `defaultTimeoutMs must be an integer from 1 to ${maxTimeoutMs}`);
    }
  }

  if (Object.hasOwn(settings, 'rateLimit')) {
    const limit = settings.rateLimit;
    if (limit === null || typeof limit !== 'object' || Array.isArray(limit)) {
      detail('rateLimit', 'rateLimit must be an object { requests, window }');
    } else {
      const { requests, window, ...extra } = limit as Record<string, unknown>;
      if (!Number.isInteger(requests) || (requests as number) < 1 || (requests as number) > MAX_CONTEXT_RATE_REQUESTS) {
        detail('rateLimit.requests', `rateLimit.requests must be an integer from 1 to ${MAX_CONTEXT_RATE_REQUESTS}`);
      }
      if (typeof window !== 'string' || rateWindowMs(window) === null) {
        detail('rateLimit.window', 'rateLimit.window must be a window like 30s, 1m, 1h or 1d (at most 7d)');
      }
      for (const key of Object.keys(extra)) detail(`rateLimit.${key}`, `rateLimit has no property ${key}`);
    }
  }
  return problems;
}
