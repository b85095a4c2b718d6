import type { JsonSchema } from '../provider/tool-provider';

/**
 * `if operation is one of …, then these fields are required`. The fields are named again in the
 * branch's `properties` (as `true`, no extra constraint) so the schema also compiles under ajv's
 * strictRequired; their real constraints stay in the top-level `properties`.
 */
export function requiredWhen(operations: string[], fields: string[]): JsonSchema {
  return {
    if: { required: ['operation'], properties: { operation: operations.length === 1 ? { const: operations[0] } : { enum: operations } } },
    then: { required: fields, properties: Object.fromEntries(fields.map((field) => [field, true])) },
  };
}
