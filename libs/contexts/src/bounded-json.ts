import { ValidateBy, ValidationOptions } from 'class-validator';

/** Bounds on a context's `metadata` and `settings`, each. */
export const CONTEXT_JSON_LIMITS = {
  /** Serialised size (UTF-8 bytes of its JSON). */
  maxBytes: 16 * 1024,
  /** Nesting: the object itself is level 1. */
  maxDepth: 5,
} as const;

/** Why the value is not an acceptable JSON object, or null when it is. */
export function boundedJsonObjectProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'must be a JSON object';
  if (depthExceeds(value, CONTEXT_JSON_LIMITS.maxDepth)) return `must not nest deeper than ${CONTEXT_JSON_LIMITS.maxDepth} levels`;
  if (Buffer.byteLength(JSON.stringify(value), 'utf8') > CONTEXT_JSON_LIMITS.maxBytes) {
    return `must not exceed ${CONTEXT_JSON_LIMITS.maxBytes} bytes as JSON`;
  }
  return null;
}

/** True when `value` nests objects/arrays more than `levels` deep (stops early: no deep recursion). */
function depthExceeds(value: unknown, levels: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (levels === 0) return true;
  const children = Array.isArray(value) ? value : Object.values(value);
  return children.some((child) => depthExceeds(child, levels - 1));
}

/** class-validator rule: a JSON object within CONTEXT_JSON_LIMITS. */
export function IsBoundedJsonObject(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'boundedJsonObject',
      validator: {
        validate: (value: unknown) => boundedJsonObjectProblem(value) === null,
        defaultMessage: (args) => `${args?.property} ${boundedJsonObjectProblem(args?.value) ?? 'is invalid'}`,
      },
    },
    options,
  );
}
