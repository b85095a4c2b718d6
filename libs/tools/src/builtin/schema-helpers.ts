import type { JsonSchema } from '../provider/tool-provider';

/**
 * `if operation is one of …, then these fields are required`. The fields are named again in the
 * branch's `properties` with their type only, so the schema compiles under ajv's strictRequired
 * and stays portable (no boolean sub-schemas, every sub-schema typed); their real constraints stay
 * in the top-level `properties`.
 */
export function requiredWhen(
  operations: string[],
  fields: Record<string, 'string' | 'array' | 'integer' | 'number' | 'boolean' | 'object'>,
): JsonSchema {
  return {
    if: {
      required: ['operation'],
      properties: { operation: operations.length === 1 ? { type: 'string', const: operations[0] } : { type: 'string', enum: operations } },
    },
    then: {
      required: Object.keys(fields),
      properties: Object.fromEntries(Object.entries(fields).map(([field, type]) => [field, { type }])),
    },
  };
}

/** Any JSON value, with every type spelled out (anyOf, not a union `type`: ajv's strictest settings). */
export const ANY_JSON_VALUE: JsonSchema = {
  anyOf: [{ type: 'object' }, { type: 'array' }, { type: 'string' }, { type: 'number' }, { type: 'boolean' }, { type: 'null' }],
};
