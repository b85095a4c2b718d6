import type { ErrorDetail } from '../errors/app.exception';

/**
 * What every JSON body and MCP message must satisfy before anything recursive (class-validator,
 * the MCP SDK's schemas, prototype-poisoning scans) or PostgreSQL sees it.
 */
export const JSON_INPUT_LIMITS = {
  /** Objects and arrays nested in each other; the top-level value is level 1. */
  maxDepth: 64,
  /** Offending places listed in one refusal. */
  maxDetails: 10,
} as const;

export type JsonInputResult =
  | { ok: true; value: unknown }
  /** `syntax`: not JSON; `depth`: nests too deep. */
  | { ok: false; reason: 'syntax' | 'depth'; details: ErrorDetail[] }
  /** A string or key the server refuses (see details); the parsed value is there to name the message (its JSON-RPC id). */
  | { ok: false; reason: 'content'; details: ErrorDetail[]; value: unknown };

// Every string the walk must look at can only come from an escape (NUL is not allowed raw in
// JSON, and a lone surrogate cannot be UTF-8 encoded) or a key named like a prototype.
const MAY_NEED_WALK = /\\u|__proto__|constructor/;

/**
 * JSON.parse (iterative in V8, so depth cannot overflow it) with the server's input rules:
 * depth bounded before parsing, and no NUL, lone surrogate or prototype-polluting key anywhere.
 * The checks that walk the value run only when the text could break a rule.
 */
export function parseJsonInput(text: string): JsonInputResult {
  if (nestsDeeperThan(text, JSON_INPUT_LIMITS.maxDepth)) {
    return { ok: false, reason: 'depth', details: [depthDetail(tooDeepField(text))] };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'syntax', details: [] };
  }
  if (!MAY_NEED_WALK.test(text)) return { ok: true, value };
  const details = unsafeContent(value);
  return details.length > 0 ? { ok: false, reason: 'content', details, value } : { ok: true, value };
}

function depthDetail(field?: string): ErrorDetail {
  const message = `must not nest deeper than ${JSON_INPUT_LIMITS.maxDepth} levels`;
  return field ? { field, message: `${field} ${message}`, code: 'maxDepth' } : { message: `JSON ${message}`, code: 'maxDepth' };
}

/** The top-level property that nests too deep, to name it in the refusal (only on that path: it parses). */
function tooDeepField(text: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  for (const [key, child] of Object.entries(value)) {
    // The property sits at level 2 of the document.
    if (depthOf(child, JSON_INPUT_LIMITS.maxDepth) > JSON_INPUT_LIMITS.maxDepth - 1) return join('', key);
  }
  return undefined;
}

/** Nesting depth of a value, counted iteratively and no further than `cap` + 1. */
function depthOf(value: unknown, cap: number): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [current, level] = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    deepest = Math.max(deepest, level);
    if (deepest > cap) return deepest;
    for (const child of Array.isArray(current) ? current : Object.values(current)) stack.push([child, level + 1]);
  }
  return deepest;
}

/**
 * True when the JSON text opens more than `max` objects/arrays inside each other. Strings are
 * skipped with indexOf, so the scan costs a fraction of the parse it protects.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  // Each level needs an opening and a closing bracket.
  if (text.length <= 2 * max) return false;
  let depth = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      for (;;) {
        i = text.indexOf('"', i + 1);
        if (i === -1) return false;
        let backslash = i - 1;
        while (text.charCodeAt(backslash) === 0x5c) backslash--;
        if ((i - 1 - backslash) % 2 === 0) break;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

/** Why a string cannot be stored or compared (PostgreSQL refuses NUL; a lone surrogate is not text), or null. */
export function stringProblem(value: string): Pick<ErrorDetail, 'code' | 'message'> | null {
  if (value.includes('\u0000')) return { code: 'nulCharacter', message: 'must not contain NUL characters' };
  if (LONE_SURROGATE.test(value)) return { code: 'loneSurrogate', message: 'must be well-formed Unicode (no lone surrogates)' };
  return null;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Every key and string in a parsed JSON value that breaks a rule, with a dotted path
 * (`items.0.name`, as class-validator names nested fields). Iterative: the depth is bounded
 * already, but the walk should not depend on it.
 */
export function unsafeContent(value: unknown, prefix = ''): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const stack: Array<[unknown, string]> = [[value, prefix]];
  while (stack.length > 0 && details.length < JSON_INPUT_LIMITS.maxDetails) {
    const [current, path] = stack.pop()!;
    if (typeof current === 'string') {
      const problem = stringProblem(current);
      if (problem) details.push(at(path, problem));
    } else if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) stack.push([current[i], join(path, String(i))]);
    } else if (current !== null && typeof current === 'object') {
      const keys = Object.keys(current);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i];
        const child = (current as Record<string, unknown>)[key];
        const keyProblem = stringProblem(key) ?? pollutionProblem(key, child);
        if (keyProblem) {
          const field = join(path, key);
          details.push({ field, message: `key ${field} ${keyProblem.message}`, code: keyProblem.code });
        } else stack.push([child, join(path, key)]);
      }
    }
  }
  return details.slice(0, JSON_INPUT_LIMITS.maxDetails);
}

/**
 * The same rules for flat string maps (path parameters, query strings): values, arrays of
 * values (repeated query keys) and keys.
 */
export function unsafeStrings(values: unknown, prefix = ''): ErrorDetail[] {
  if (values === null || typeof values !== 'object') return [];
  let details: ErrorDetail[] | undefined;
  for (const key in values) {
    const value = (values as Record<string, unknown>)[key];
    const problem = stringProblem(key) ?? (typeof value === 'string' ? stringProblem(value) : null);
    if (problem) (details ??= []).push(at(join(prefix, key), problem));
    else if (Array.isArray(value)) {
      for (const item of value) {
        const itemProblem = typeof item === 'string' ? stringProblem(item) : null;
        if (itemProblem) (details ??= []).push(at(join(prefix, key), itemProblem));
      }
    }
  }
  return details ?? [];
}

/** The keys Fastify's own parser refuses on REST (`__proto__`, `constructor.prototype`), for every transport. */
function pollutionProblem(key: string, child: unknown): Pick<ErrorDetail, 'code' | 'message'> | null {
  if (key === '__proto__') return { code: 'forbiddenKey', message: 'is not allowed (prototype pollution)' };
  if (key === 'constructor' && child !== null && typeof child === 'object' && Object.prototype.hasOwnProperty.call(child, 'prototype')) {
    return { code: 'forbiddenKey', message: 'with a "prototype" is not allowed (prototype pollution)' };
  }
  return null;
}

function at(field: string, problem: Pick<ErrorDetail, 'code' | 'message'>): ErrorDetail {
  return field
    ? { field, message: `${field} ${problem.message}`, code: problem.code }
    : { message: `value ${problem.message}`, code: problem.code };
}

/** Paths echo the caller's keys: make them printable and short. */
function join(path: string, key: string): string {
  const label = key.length > 64 ? `${key.slice(0, 64)}…` : key;
  const safe = stringProblem(label) ? label.replace(UNPRINTABLE, '\uFFFD') : label;
  return path ? `${path}.${safe}` : safe;
}

const UNPRINTABLE = /\u0000|[\uD800-\uDFFF]/g;
