/**
 * One line of the summary table. Cells are text so a scenario can show more than one figure
 * (a p99 beside a rate, three P7 measurements); `met` is undefined when a scenario has no goal
 * to judge (or could not measure).
 */
export interface Row {
  id: string;
  what: string;
  baseline: string;
  candidate: string;
  ratio: string;
  goal: string;
  met: boolean | undefined;
  /** Lines printed under the table: what a figure means, what fell short. */
  notes?: string[];
  /** Things that went wrong while measuring (non-2xx answers, dropped sessions): printed, and the run exits 1. */
  problems?: string[];
}

export interface Scenario {
  id: string;
  what: string;
  /** One row, or a row and its reference rows (measured in the same alternation). */
  run(settings: import('./settings').BenchSettings): Promise<Row | Row[]>;
}

const HEADER = ['id', 'what', 'baseline', 'candidate', 'median ratio', 'goal', 'met?'];

/** The summary as a Markdown table (so it can be pasted into the README as is). */
export function formatTable(rows: Row[]): string {
  const cells = rows.map((row) => [
    row.id,
    row.what,
    row.baseline,
    row.candidate,
    row.ratio,
    row.goal,
    row.met === undefined ? '–' : row.met ? 'yes' : 'no',
  ]);
  const widths = HEADER.map((title, i) => Math.max(title.length, ...cells.map((line) => line[i].length)));
  const line = (values: string[]) => `| ${values.map((value, i) => value.padEnd(widths[i])).join(' | ')} |`;
  return [line(HEADER), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

export function failedRow(scenario: Pick<Scenario, 'id' | 'what'>, error: unknown): Row {
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0].slice(0, 200);
  return { id: scenario.id, what: scenario.what, baseline: '–', candidate: `FAILED: ${message}`, ratio: '–', goal: '–', met: undefined };
}

/** 1234.5 -> "1,235"; small values keep a decimal or two. */
export function fmt(value: number, digits?: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

export function times(ratio: number): string {
  return Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : 'n/a';
}

/** CPU time per call (microseconds) as a cell: "123 µs CPU/call". */
export function cpuPerCall(us: number): string {
  return `${fmt(us)} µs CPU/call`;
}
