import { ToolError, ToolErrorCode, throwIfAborted } from '../provider/tool-error';
import type { JsonSchema, ToolCallContext, ToolDefinition } from '../provider/tool-provider';
import type { BuiltinTool } from './builtin-tool';
import { requiredWhen } from './schema-helpers';
import { aggregate, describe } from './statistics';

export const STATISTICS_MAX_ITEMS = 100_000;

const NUMBER = { type: 'number' };
// anyOf rather than a union `type`: compiles under ajv's strictest settings.
const NULLABLE_NUMBER = { anyOf: [{ type: 'number' }, { type: 'null' }] };

const DESCRIBE_OUTPUT: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: [
    'operation',
    'count',
    'min',
    'max',
    'sum',
    'mean',
    'median',
    'variance',
    'stddev',
    'sampleVariance',
    'sampleStddev',
    'percentiles',
    'histogram',
  ],
  properties: {
    operation: { type: 'string', const: 'describe' },
    count: { type: 'integer', minimum: 1 },
    min: NUMBER,
    max: NUMBER,
    sum: NUMBER,
    mean: NUMBER,
    median: NUMBER,
    variance: { type: 'number', minimum: 0 },
    stddev: { type: 'number', minimum: 0 },
    sampleVariance: NULLABLE_NUMBER,
    sampleStddev: NULLABLE_NUMBER,
    percentiles: {
      type: 'array',
      items: { type: 'object', additionalProperties: false, required: ['p', 'value'], properties: { p: NUMBER, value: NUMBER } },
    },
    histogram: {
      type: 'object',
      additionalProperties: false,
      required: ['binWidth', 'bins'],
      properties: {
        binWidth: { type: 'number', minimum: 0 },
        bins: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['from', 'to', 'count'],
            properties: { from: NUMBER, to: NUMBER, count: { type: 'integer', minimum: 0 } },
          },
        },
      },
    },
  },
};

const AGGREGATE_OUTPUT: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['operation', 'groupBy', 'field', 'groups'],
  properties: {
    operation: { type: 'string', const: 'aggregate' },
    groupBy: { type: 'string' },
    field: { anyOf: [{ type: 'string' }, { type: 'null' }] },
    groups: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['key', 'count', 'values', 'sum', 'mean', 'min', 'max'],
        properties: {
          key: { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }, { type: 'null' }] },
          count: { type: 'integer', minimum: 1 },
          values: { type: 'integer', minimum: 0 },
          sum: NULLABLE_NUMBER,
          mean: NULLABLE_NUMBER,
          min: NULLABLE_NUMBER,
          max: NULLABLE_NUMBER,
        },
      },
    },
  },
};

interface StatisticsInput {
  operation: 'describe' | 'aggregate';
  values?: number[];
  percentiles?: number[];
  bins?: number;
  records?: Record<string, unknown>[];
  groupBy?: string;
  field?: string;
}

function assertFinite(figures: unknown): void {
  const stack = [figures];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'number' && !Number.isFinite(value)) {
      throw new ToolError(ToolErrorCode.INVALID_INPUT, 'the values are too large to summarise (a figure overflows)');
    }
    if (value && typeof value === 'object') stack.push(...Object.values(value));
  }
}

/** analytics — descriptive statistics, percentiles and a histogram; or group-by aggregation over records. */
export class StatisticsTool implements BuiltinTool {
  readonly definition: ToolDefinition = {
    id: 'tool_statistics',
    name: 'statistics',
    title: 'Statistics',
    description:
      'describe: count, min, max, sum, mean, median, population and sample variance/stddev, percentiles ' +
      '(linear interpolation) and an equal-width histogram of a numeric array. aggregate: groups records by a ' +
      'field and gives count, sum, mean, min and max of a numeric field per group.',
    version: '1.0.0',
    category: 'analytics',
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['operation'],
      properties: {
        operation: { type: 'string', enum: ['describe', 'aggregate'] },
        values: {
          type: 'array',
          minItems: 1,
          maxItems: STATISTICS_MAX_ITEMS,
          items: { type: 'number' },
          description: 'describe: the numbers',
        },
        percentiles: {
          type: 'array',
          maxItems: 20,
          items: { type: 'number', minimum: 0, maximum: 100 },
          default: [50, 90, 99],
          description: 'describe: percentiles to compute, 0 to 100',
        },
        bins: { type: 'integer', minimum: 1, maximum: 1000, default: 10, description: 'describe: histogram bins' },
        records: { type: 'array', maxItems: STATISTICS_MAX_ITEMS, items: { type: 'object' }, description: 'aggregate: the records' },
        groupBy: { type: 'string', minLength: 1, maxLength: 256, description: 'aggregate: top-level field to group by' },
        field: { type: 'string', minLength: 1, maxLength: 256, description: 'aggregate: top-level numeric field to summarise' },
      },
      allOf: [requiredWhen(['describe'], { values: 'array' }), requiredWhen(['aggregate'], { records: 'array', groupBy: 'string' })],
    },
    // An object root (what MCP advertises and validates structuredContent against), one branch per operation.
    outputSchema: { type: 'object', oneOf: [DESCRIBE_OUTPUT, AGGREGATE_OUTPUT] },
    permissions: ['tools:execute'],
    rateLimit: { requests: 120, window: '1m' },
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    enabledByDefault: true,
  };

  async execute(raw: unknown, ctx: ToolCallContext): Promise<unknown> {
    const input = raw as StatisticsInput;
    throwIfAborted(ctx.signal);
    if (input.operation === 'describe') {
      if (!input.values?.length) throw new ToolError(ToolErrorCode.INVALID_INPUT, 'values must hold at least one number');
      const result = { operation: 'describe', ...describe(input.values ?? [], input.percentiles ?? [50, 90, 99], input.bins ?? 10) };
      assertFinite(result);
      return result;
    }
    const groups = aggregate(input.records ?? [], input.groupBy ?? '', input.field, () => throwIfAborted(ctx.signal));
    const result = { operation: 'aggregate', groupBy: input.groupBy, field: input.field ?? null, groups };
    assertFinite(result);
    return result;
  }
}
