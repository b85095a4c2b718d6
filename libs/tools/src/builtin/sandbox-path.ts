import { ToolError, ToolErrorCode } from '../provider/tool-error';

export const MAX_PATH_LENGTH = 1024;
const MAX_NAME_BYTES = 255;

/**
 * Characters that look like a dot, a slash or a backslash but are not one. NFKC folds many of
 * them (U+FF0E, U+2024, U+FF0F...) and those are refused by the NFKC test already; this list
 * catches the ones NFKC leaves alone (U+2215 DIVISION SLASH, U+2044 FRACTION SLASH...).
 */
const LOOKALIKES = new Set([
  '\u2024',
  '\u2025',
  '\u2026',
  '\uFE52',
  '\uFF0E',
  '\u3002',
  '\uFF61', // dots
  '\u2215',
  '\u2044',
  '\u29F8',
  '\uFF0F',
  '\u2571',
  '\u0337',
  '\u0338',
  '\u1735', // slashes
  '\\',
  '\u2216',
  '\u29F5',
  '\u29F9',
  '\uFE68',
  '\uFF3C',
  '\u2572', // backslashes
]);

/** Control, format (bidi overrides, zero-width joiners), line/paragraph separators, lone surrogates. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;

/** A caller's path, checked as a string: relative, no `..`, no tricks (FilesystemSandbox checks real paths). */
export interface SandboxPath {
  /** Path segments below the root; empty for the root itself. */
  segments: string[];
  /** The path as shown back to the caller: segments joined by `/`, or `.` for the root. */
  display: string;
}

function violation(message: string): ToolError {
  return new ToolError(ToolErrorCode.SANDBOX_VIOLATION, message);
}

/**
 * Parses a caller-supplied path. Everything that could name something other than the plain
 * relative path it appears to be is refused: absolute paths, `..`, NUL and other control or
 * invisible characters, names whose NFKC form differs (full-width letters, decomposed accents,
 * compatibility dots and slashes) and dot/slash look-alikes NFKC does not fold.
 */
export function parseSandboxPath(raw: string): SandboxPath {
  if (typeof raw !== 'string') throw new ToolError(ToolErrorCode.INVALID_INPUT, 'path must be a string');
  if (raw.length > MAX_PATH_LENGTH) throw new ToolError(ToolErrorCode.INVALID_INPUT, `path is longer than ${MAX_PATH_LENGTH} characters`);
  if (INVISIBLE.test(raw)) throw violation('path contains control or invisible characters');
  if (raw.normalize('NFKC') !== raw) throw violation('path contains characters that are not in Unicode NFKC form');
  for (const char of raw) {
    if (LOOKALIKES.has(char)) throw violation('path contains a look-alike of a dot, slash or backslash');
  }
  if (raw.startsWith('/')) throw violation('absolute paths are not allowed; paths are relative to the sandbox root');

  const segments: string[] = [];
  for (const segment of raw.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') throw violation('".." is not allowed in paths');
    if (Buffer.byteLength(segment, 'utf8') > MAX_NAME_BYTES) {
      throw new ToolError(ToolErrorCode.INVALID_INPUT, `a path segment is longer than ${MAX_NAME_BYTES} bytes`);
    }
    segments.push(segment);
  }
  return { segments, display: segments.length === 0 ? '.' : segments.join('/') };
}
