import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const README = join(__dirname, '..', '..', 'README.md');

export interface CodeBlock {
  /** The fence's info string (`sh`, `yaml`, …). */
  lang: string;
  /** 1-based README line of the block's first content line. */
  line: number;
  text: string;
  /** Preceded by `<!-- run -->` (only blank lines between). */
  run: boolean;
  /** The word of a `<!-- word -->` comment right before the block (`run`, `helm-recipe`, …). */
  marker: string | undefined;
}

/** Every fenced block of the README, in order. */
export function readmeBlocks(text = readFileSync(README, 'utf8')): CodeBlock[] {
  const lines = text.split('\n');
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
    let before = i - 1;
    while (before >= 0 && lines[before].trim() === '') before--;
    const marker = before >= 0 ? /^<!-- ([a-z-]+) -->$/.exec(lines[before].trim())?.[1] : undefined;
    blocks.push({ lang: open[1], line: i + 2, text: lines.slice(i + 1, end).join('\n'), run: marker === 'run', marker });
    i = end;
  }
  return blocks;
}

/**
 * One bash script of every runnable block, each line at its README line number (so `$LINENO` in
 * an error names the README line), with localhost:3000 replaced by the server under test.
 */
export function runnableScript(blocks: CodeBlock[], port: number): string {
  // curl's answers carry no final newline: the wrapper ends each one, so every answer is a line.
  const out: string[] = [
    'set -eEuo pipefail; trap \'echo "README.md:$LINENO failed (exit $?): $BASH_COMMAND" >&2\' ERR; ' +
      'curl() { local s=0; command curl "$@" || s=$?; echo; return $s; }',
  ];
  for (const block of blocks.filter((b) => b.run)) {
    while (out.length < block.line - 1) out.push('');
    out.push(...block.text.replace(/localhost:3000/g, `localhost:${port}`).split('\n'));
  }
  return `${out.join('\n')}\n`;
}
