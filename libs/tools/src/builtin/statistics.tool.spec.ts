import Ajv from 'ajv';
import { aggregate, describe as describeValues, histogramOfSorted, percentileOfSorted } from './statistics';
import { StatisticsTool } from './statistics.tool';
import { ctx, failure } from './tool-call.test-helpers';

// Hand-computed: n = 8, sum = 40, mean = 5, squared deviations 9+1+1+1+0+0+4+16 = 32,
// population variance 32/8 = 4, sample variance 32/7.
const VALUES = [9, 4, 2, 4, 5, 4, 7, 5];

describe('statistics', () => {
  it('describes a numeric array', () => {
    const d = describeValues(VALUES, [0, 25, 50, 90, 99, 100], 7);
    expect(d).toMatchObject({ count: 8, min: 2, max: 9, sum: 40, mean: 5, median: 4.5, variance: 4, stddev: 2 });
    expect(d.sampleVariance).toBeCloseTo(32 / 7, 12);
    expect(d.sampleStddev).toBeCloseTo(Math.sqrt(32 / 7), 12);
    // rank = p/100 * (n-1) over the sorted values 2 4 4 4 5 5 7 9.
    expect(d.percentiles.map((p) => p.p)).toEqual([0, 25, 50, 90, 99, 100]);
    const [p0, p25, p50, p90, p99, p100] = d.percentiles.map((p) => p.value);
    expect(p0).toBe(2);
    expect(p25).toBe(4); // rank 1.75 between 4 and 4
    expect(p50).toBe(4.5); // rank 3.5 between 4 and 5
    expect(p90).toBeCloseTo(7.6, 12); // rank 6.3: 7 + 0.3 * (9 - 7)
    expect(p99).toBeCloseTo(8.86, 12); // rank 6.93: 7 + 0.93 * 2
    expect(p100).toBe(9);
    // Width (9 - 2) / 7 = 1: [2,3) [3,4) [4,5) [5,6) [6,7) [7,8) [8,9]
    expect(d.histogram).toEqual({
      binWidth: 1,
      bins: [
        { from: 2, to: 3, count: 1 },
        { from: 3, to: 4, count: 0 },
        { from: 4, to: 5, count: 3 },
        { from: 5, to: 6, count: 2 },
        { from: 6, to: 7, count: 0 },
        { from: 7, to: 8, count: 1 },
        { from: 8, to: 9, count: 1 },
      ],
    });
  });

  it('puts the maximum in the last bin and equal values in one bin', () => {
    expect(histogramOfSorted([2, 4, 4, 4, 5, 5, 7, 9], 2).bins).toEqual([
      { from: 2, to: 5.5, count: 6 },
      { from: 5.5, to: 9, count: 2 },
    ]);
    expect(histogramOfSorted([3, 3, 3], 10)).toEqual({ binWidth: 0, bins: [{ from: 3, to: 3, count: 3 }] });
  });

  it('handles a single value and sums without drift', () => {
    const one = describeValues([3], [50], 4);
    expect(one).toMatchObject({
      count: 1,
      min: 3,
      max: 3,
      mean: 3,
      median: 3,
      variance: 0,
      stddev: 0,
      sampleVariance: null,
      sampleStddev: null,
    });
    expect(describeValues([0.1, 0.2, 0.3], [], 1).sum).toBe(0.6);
    expect(describeValues([1e16, 1, -1e16], [], 1).sum).toBe(1);
    expect(percentileOfSorted([10, 20], 50)).toBe(15);
  });

  it('aggregates records by a field in order of first appearance', () => {
    const records = [
      { team: 'a', score: 10 },
      { team: 'b', score: 5 },
      { team: 'a', score: 20 },
      { team: 'a', score: 'n/a' },
      { team: 'b' },
      { score: 7 },
      { team: 1, score: 1 },
      { team: '1', score: 2 },
      { team: { nested: true }, score: 3 },
    ];
    expect(aggregate(records, 'team', 'score')).toEqual([
      { key: 'a', count: 3, values: 2, sum: 30, mean: 15, min: 10, max: 20 },
      { key: 'b', count: 2, values: 1, sum: 5, mean: 5, min: 5, max: 5 },
      { key: null, count: 1, values: 1, sum: 7, mean: 7, min: 7, max: 7 },
      { key: 1, count: 1, values: 1, sum: 1, mean: 1, min: 1, max: 1 },
      { key: '1', count: 1, values: 1, sum: 2, mean: 2, min: 2, max: 2 },
      { key: '{"nested":true}', count: 1, values: 1, sum: 3, mean: 3, min: 3, max: 3 },
    ]);
    expect(aggregate(records, 'team', undefined)[0]).toEqual({
      key: 'a',
      count: 3,
      values: 0,
      sum: null,
      mean: null,
      min: null,
      max: null,
    });
  });
});

describe('StatisticsTool', () => {
  const tool = new StatisticsTool();
  const validateOutput = new Ajv({ allErrors: true, strict: true }).compile(tool.definition.outputSchema);

  it('describes with default percentiles and bins, matching the output schema', async () => {
    const output = (await tool.execute({ operation: 'describe', values: VALUES }, ctx())) as {
      percentiles: Array<{ p: number }>;
      histogram: { bins: unknown[] };
    };
    expect(validateOutput(output)).toBe(true);
    expect(output).toMatchObject({ operation: 'describe', count: 8, mean: 5, variance: 4 });
    expect(output.percentiles.map((p) => p.p)).toEqual([50, 90, 99]);
    expect(output.histogram.bins).toHaveLength(10);
  });

  it('aggregates, matching the output schema', async () => {
    const output = await tool.execute(
      { operation: 'aggregate', records: [{ g: 'x', v: 2 }, { g: 'x', v: 4 }, { g: 'y' }], groupBy: 'g', field: 'v' },
      ctx(),
    );
    expect(validateOutput(output)).toBe(true);
    expect(output).toEqual({
      operation: 'aggregate',
      groupBy: 'g',
      field: 'v',
      groups: [
        { key: 'x', count: 2, values: 2, sum: 6, mean: 3, min: 2, max: 4 },
        { key: 'y', count: 1, values: 0, sum: null, mean: null, min: null, max: null },
      ],
    });
    const counted = await tool.execute({ operation: 'aggregate', records: [{ g: 1 }], groupBy: 'g' }, ctx());
    expect(validateOutput(counted)).toBe(true);
  });

  it('refuses figures that overflow and stops when aborted', async () => {
    expect((await failure(tool.execute({ operation: 'describe', values: [1e308, 1e308] }, ctx()))).code).toBe('INVALID_INPUT');
    const controller = new AbortController();
    controller.abort();
    expect((await failure(tool.execute({ operation: 'describe', values: [1] }, ctx(controller.signal)))).code).toBe('ABORTED');
    const records = Array.from({ length: 30_000 }, (_, i) => ({ g: i % 3 }));
    expect((await failure(tool.execute({ operation: 'aggregate', records, groupBy: 'g' }, ctx(controller.signal)))).code).toBe('ABORTED');
  });

  it('summarises the largest allowed array', async () => {
    const values = Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 1000);
    const output = (await tool.execute({ operation: 'describe', values, percentiles: [50], bins: 100 }, ctx())) as {
      count: number;
      min: number;
      max: number;
    };
    expect(output).toMatchObject({ count: 100_000, min: 0, max: 999 });
  });
});
