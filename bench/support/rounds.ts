import { log, median } from './bench-util';

/** One thing measured in alternation with others (a baseline, a candidate, a reference). */
export interface Side<R> {
  label: string;
  measure(seconds: number): Promise<R>;
}

export interface RoundPlan {
  rounds: number;
  seconds: number;
  warmupSeconds: number;
}

/**
 * The one round loop every scenario uses: a warm-up of each side, then `rounds` rounds in which
 * every side runs once, back to back, so drift in a shared machine hits all sides alike. The
 * order rotates each round (A B, B A, ...) so no side always runs right after another. Returns
 * each side's results, in round order; `describe` prints one line per round.
 */
export async function alternate<R>(
  tag: string,
  sides: Array<Side<R>>,
  plan: RoundPlan,
  describe: (results: R[]) => string,
): Promise<R[][]> {
  if (plan.warmupSeconds > 0) {
    log(`[${tag}] warm-up: ${plan.warmupSeconds}s each (${sides.map((s) => s.label).join(', ')})`);
    for (const side of sides) await side.measure(plan.warmupSeconds);
  }
  const results: R[][] = sides.map(() => []);
  for (let round = 0; round < plan.rounds; round++) {
    const current: R[] = new Array(sides.length);
    for (let k = 0; k < sides.length; k++) {
      const i = round % 2 === 0 ? k : sides.length - 1 - k;
      current[i] = await sides[i].measure(plan.seconds);
    }
    current.forEach((result, i) => results[i].push(result));
    log(`[${tag}] round ${round + 1}/${plan.rounds}: ${describe(current)}`);
  }
  return results;
}

/** Median of a field over rounds. */
export function medianOf<R>(rounds: R[], pick: (r: R) => number): number {
  return median(rounds.map(pick));
}

/** Median of the per-round ratios a/b (paired rounds resist drift better than a ratio of medians). */
export function pairedRatio<R>(a: R[], b: R[], pick: (r: R) => number): number {
  return median(a.map((r, i) => pick(r) / pick(b[i])));
}
