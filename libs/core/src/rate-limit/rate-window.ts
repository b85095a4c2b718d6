/** Rate-limit windows are written `<n><unit>`: `30s`, `1m`, `1h`, `1d`. */
export const RATE_WINDOW_PATTERN = /^([1-9][0-9]{0,5})(s|m|h|d)$/;

/** Longest window accepted: counters for longer ones would outlive restarts and deploys anyway. */
export const MAX_RATE_WINDOW_MS = 7 * 86_400_000;

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The window's length in milliseconds, or null when it is not a valid window. */
export function rateWindowMs(window: string): number | null {
  const match = RATE_WINDOW_PATTERN.exec(window);
  if (!match) return null;
  const ms = Number(match[1]) * UNIT_MS[match[2]];
  return ms <= MAX_RATE_WINDOW_MS ? ms : null;
}
