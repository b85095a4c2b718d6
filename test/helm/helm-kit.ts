import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';

/** What the chart's e2e suites share: where the chart and Helm are, a process runner and `helm template`. */

export const ROOT = join(__dirname, '..', '..');
export const CHART = join(ROOT, 'helm', 'secure-mcp-server');
export const HELM = join(ROOT, 'scripts', 'helm.js');
/** Validates objects (JSON on stdin) against the Kubernetes and Prometheus Operator schemas. */
export const VALIDATOR = join(__dirname, 'validate-manifests.mjs');
export const FULLNAME = 'mcp-secure-mcp-server';

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
  type?: string;
};

/** What the default install needs besides the values file: the secrets and the SMS gateway. */
export const REQUIRED = [
  '--set', `secrets.jwtSecret=${'j'.repeat(48)}`,
  '--set', `secrets.encryptionKey=${'e'.repeat(48)}`,
  '--set', `secrets.auditHmacKey=${'a'.repeat(48)}`,
  '--set', 'config.sms.httpUrl=https://sms.example.com/send',
];

/** Runs a program to its end; resolves with its exit code and output (a non-zero exit is not an error here). */
export function run(file: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { cwd: ROOT, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error);
      resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** `helm template` of the chart as release `mcp`; resolves with the documents, or with Helm's error message when it refuses. */
export async function render(args: string[], namespace = 'mcp'): Promise<{ objects: K8sObject[]; error?: string }> {
  const { code, stdout, stderr } = await run(process.execPath, [HELM, 'template', 'mcp', CHART, '--namespace', namespace, ...args]);
  if (code !== 0) return { objects: [], error: stderr };
  const objects = (loadAll(stdout) as (K8sObject | null)[]).filter((doc): doc is K8sObject => doc !== null);
  return { objects };
}

/** `helm template` that must succeed. */
export async function renderOk(args: string[]): Promise<K8sObject[]> {
  const { objects, error } = await render(args);
  if (error !== undefined) throw new Error(`helm template ${args.join(' ')} failed:\n${error}`);
  return objects;
}
