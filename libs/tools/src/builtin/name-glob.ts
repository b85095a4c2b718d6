/**
 * Whole-name glob with `*` (any run, also empty) and `?` (one character); every other character
 * stands for itself. Pattern and name are arrays of code points.
 *
 * Iterative two-pointer matching instead of a regular expression: on a mismatch it resumes only
 * from the most recent `*`, one name position further than last time, so it never needs more than
 * (name length + 1) × (pattern length + 1) steps. A backtracking regex of `*a*a*a…*b` is
 * exponential in the number of stars.
 */
export function globMatches(pattern: readonly string[], name: readonly string[]): boolean {
  let p = 0;
  let n = 0;
  let star = -1;
  let resumeAt = 0;
  while (n < name.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === name[n])) {
      p += 1;
      n += 1;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p;
      p += 1;
      resumeAt = n;
    } else if (star >= 0) {
      // Let the last star swallow one more character and try the rest of the pattern again.
      resumeAt += 1;
      p = star + 1;
      n = resumeAt;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p += 1;
  return p === pattern.length;
}

/**
 * Name matcher for the filesystem search: a pattern with `*` or `?` is a glob over the whole
 * name, anything else a substring; both ignore case.
 */
export function nameMatcher(pattern: string): (name: string) => boolean {
  const lower = pattern.toLowerCase();
  if (!/[*?]/.test(pattern)) return (name) => name.toLowerCase().includes(lower);
  const glob = Array.from(lower);
  return (name) => globMatches(glob, Array.from(name.toLowerCase()));
}
