/**
 * Matches a path against a template whose `:name` segments capture one segment each
 * (`/api/v1/contexts/:id/mcp/ws`). Returns the captured values, or null when it does not match.
 */
export function matchPathTemplate(template: string, pathname: string): Record<string, string> | null {
  const expected = template.split('/');
  const actual = pathname.replace(/\/+$/, '').split('/');
  if (expected.length !== actual.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < expected.length; i++) {
    if (expected[i].startsWith(':')) {
      if (actual[i] === '') return null;
      try {
        params[expected[i].slice(1)] = decodeURIComponent(actual[i]);
      } catch {
        return null;
      }
    } else if (expected[i] !== actual[i]) {
      return null;
    }
  }
  return params;
}
