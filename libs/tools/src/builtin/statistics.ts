/**
 * The figures behind the statistics tool, as plain functions so they can be checked against
 * hand-computed values.
 */

export interface Description {
  count: number;
  min: number;
  max: number;
  sum: number;
  mean: number;
  median: number;
  /** Population variance (divides by n). */
  variance: number;
  stddev: number;
  /** Sample variance (divides by n - 1); null for a single value. */
  sampleVariance: number | null;
  sampleStddev: number | null;
  percentiles: Array<{ p: number; value: number }>;
  histogram: Histogram;
}

export interface Histogram {
  binWidth: number;
  bins: Array<{ from: number; to: number; count: number }>;
}

export interface GroupFigures {
  key: string | number | boolean | null;
  count: number;
  /** How many records of the group had a numeric `field`; the figures below cover those. */
  values: number;
  sum: number | null;
  mean: number | null;
  min: number | null;
  max: number | null;
}

/** Sum with Neumaier compensation: exact enough that mean and variance match hand computation. */
export class CompensatedSum {
  private sum = 0;
  private compensation = 0;

  add(value: number): void {
    const total = this.sum + value;
    this.compensation += Math.abs(this.sum) >= Math.abs(value) ? this.sum - total + value : value - total + this.sum;
    this.sum = total;
  }

  get value(): number {
    return this.sum + this.compensation;
  }
}

/** Percentile of sorted values by linear interpolation between closest ranks (R-7, Excel PERCENTILE.INC). */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  const rank = ((sorted.length - 1) * p) / 100;
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low] + (rank - low) * (sorted[high] - sorted[low]);
}

/**
 * Equal-width bins from min to max; each bin holds [from, to) except the last, which also holds
 * max. When every value is equal there is one bin of width 0.
 */
export function histogramOfSorted(sorted: ArrayLike<number>, binCount: number): Histogram {
  const min = sorted[0];
  const max = sorted[sorted.length - 1];
  if (max === min) return { binWidth: 0, bins: [{ from: min, to: max, count: sorted.length }] };
  const width = (max - min) / binCount;
  const bins = Array.from({ length: binCount }, (_, i) => ({
    from: min + i * width,
    to: i === binCount - 1 ? max : min + (i + 1) * width,
    count: 0,
  }));
  for (let i = 0; i < sorted.length; i++) {
    const index = Math.min(Math.floor((sorted[i] - min) / width), binCount - 1);
    bins[index].count += 1;
  }
  return { binWidth: width, bins };
}

export function describe(values: readonly number[], percentiles: readonly number[], binCount: number): Description {
  const sorted = Float64Array.from(values).sort();
  const count = sorted.length;
  const total = new CompensatedSum();
  for (let i = 0; i < count; i++) total.add(sorted[i]);
  const sum = total.value;
  const mean = sum / count;
  const squares = new CompensatedSum();
  for (let i = 0; i < count; i++) squares.add((sorted[i] - mean) ** 2);
  const variance = squares.value / count;
  const sampleVariance = count > 1 ? squares.value / (count - 1) : null;
  return {
    count,
    min: sorted[0],
    max: sorted[count - 1],
    sum,
    mean,
    median: percentileOfSorted(sorted, 50),
    variance,
    stddev: Math.sqrt(variance),
    sampleVariance,
    sampleStddev: sampleVariance === null ? null : Math.sqrt(sampleVariance),
    percentiles: percentiles.map((p) => ({ p, value: percentileOfSorted(sorted, p) })),
    histogram: histogramOfSorted(sorted, binCount),
  };
}

type GroupKey = GroupFigures['key'];

function groupKeyOf(value: unknown): GroupKey {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  return JSON.stringify(value);
}

/**
 * Groups records by the value of `groupBy` (missing: null; objects and arrays by their JSON) in
 * order of first appearance, counting records and summarising the numeric values of `field`.
 */
export function aggregate(
  records: readonly Record<string, unknown>[],
  groupBy: string,
  field: string | undefined,
  onProgress?: (done: number) => void,
): GroupFigures[] {
  const groups = new Map<string, { key: GroupKey; count: number; values: number; sum: CompensatedSum; min: number; max: number }>();
  for (let i = 0; i < records.length; i++) {
    if (onProgress && i % 10_000 === 0) onProgress(i);
    const record = records[i];
    const key = groupKeyOf(Object.prototype.hasOwnProperty.call(record, groupBy) ? record[groupBy] : undefined);
    const id = `${typeof key}:${String(key)}`;
    let group = groups.get(id);
    if (!group) {
      group = { key, count: 0, values: 0, sum: new CompensatedSum(), min: Infinity, max: -Infinity };
      groups.set(id, group);
    }
    group.count += 1;
    if (field === undefined || !Object.prototype.hasOwnProperty.call(record, field)) continue;
    const value = record[field];
    if (typeof value !== 'number' || !Number.isFinite(value)) continue;
    group.values += 1;
    group.sum.add(value);
    group.min = Math.min(group.min, value);
    group.max = Math.max(group.max, value);
  }
  return [...groups.values()].map((g) => {
    const has = g.values > 0;
    const sum = g.sum.value;
    return {
      key: g.key,
      count: g.count,
      values: g.values,
      sum: has ? sum : null,
      mean: has ? sum / g.values : null,
      min: has ? g.min : null,
      max: has ? g.max : null,
    };
  });
}
