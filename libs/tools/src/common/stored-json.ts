/**
 * Values bound for jsonb columns. Postgres refuses NUL characters and lone surrogates in jsonb
 * strings, and execution rows must not grow without bound, so everything stored passes here.
 */

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const PREVIEW_CHARS = 1024;

function storableString(value: string): string {
  return value.replace(/\u0000/g, '\uFFFD').replace(LONE_SURROGATE, '\uFFFD');
}

/**
 * Plain JSON (what a client would receive): Dates become strings, undefined members vanish,
 * strings become storable. Throws on values JSON cannot express (cycles, BigInt).
 */
export function toPlainJson(value: unknown): unknown {
  const text = JSON.stringify(value, (_key, member: unknown) => (typeof member === 'string' ? storableString(member) : member));
  return text === undefined ? null : JSON.parse(text);
}

/** A serialised value no larger than `maxBytes`; larger values are replaced by a marked preview. */
export function boundedJson(value: unknown, maxBytes: number): string {
  const text = JSON.stringify(value ?? null);
  const bytes = Buffer.byteLength(text);
  if (bytes <= maxBytes) return text;
  return JSON.stringify({ truncated: true, originalBytes: bytes, preview: storableString(text.slice(0, PREVIEW_CHARS)) });
}
