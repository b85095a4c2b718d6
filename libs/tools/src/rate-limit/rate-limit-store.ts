/** The outcome of counting one call against a budget. */
export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  /** Calls left in the current window after this one. */
  remaining: number;
  /** Milliseconds until the current window ends and the budget is full again. */
  resetInMs: number;
}

/**
 * Where per-user, per-tool counters live. In-process by default; a Redis implementation (shared
 * by every replica) replaces it by providing this token. Fixed windows: a budget of `limit`
 * calls per `windowMs`, starting with the first call of the window.
 */
export abstract class RateLimitStore {
  /** Counts one call under `key` (refused calls are not counted) and says whether it may go on. */
  abstract hit(key: string, limit: number, windowMs: number, nowMs: number): Promise<RateLimitDecision>;
}
