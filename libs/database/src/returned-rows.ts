/**
 * The rows a raw statement returned. TypeORM's `query()` gives UPDATE and DELETE results as
 * `[rows, rowCount]` but everything else (INSERT ... RETURNING, SELECT) as the rows alone.
 */
export function returnedRows<T>(result: unknown): T[] {
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') {
    return result[0] as T[];
  }
  return Array.isArray(result) ? (result as T[]) : [];
}
