import { ChildProcess, spawn } from 'node:child_process';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_EMAIL, Caller, login } from '../support/identity';
import { http, TestApp } from '../support/test-app';

export { waitFor } from '../support/polling';
export { freePort } from '../support/server-process';

/** The reference server of the official MCP servers repository (ESM, v1 SDK, 2025 era only). */
export const EVERYTHING = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');
/** Our own upstream on the official v2 server SDK, whose greet description can be changed. */
export const MUTABLE_UPSTREAM = join(__dirname, 'fixtures', 'mutable-upstream.cjs');
const LOOPBACK_ONLY = join(__dirname, 'fixtures', 'loopback-only.cjs');
/** Our reference upstream for the official conformance suite (official v2 server SDK, Streamable HTTP, both eras). */
const REFERENCE = join(__dirname, 'fixtures', 'reference-upstream.cjs');

export interface ReferenceUpstream {
  url: string;
  child: ChildProcess;
}

/** Starts the reference upstream on a free loopback port. */
export function startReferenceUpstream(): Promise<ReferenceUpstream> {
  return startListeningScript(REFERENCE, ['0']);
}

/** Runs a Node script that prints "listening on <url>" once it serves; resolves with that URL and the process. */
export async function startListeningScript(script: string, args: string[]): Promise<ReferenceUpstream> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${script} did not start: ${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += String(chunk);
      const match = /listening on (\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code}): ${output}`));
    });
  });
  return { url, child };
}

/**
 * The reference upstream's entry in an upstreams file: HTTP, an empty id prefix (its tools keep
 * their names), and a budget wide enough for the conformance suite's few hundred calls a minute
 * (the default, 60/min, is not under test where it is used).
 */
export function referenceUpstreamEntry(reference: ReferenceUpstream): Record<string, unknown> {
  return {
    name: 'reference',
    transport: 'http',
    url: reference.url,
    category: 'system',
    permissions: ['tools:execute'],
    idPrefix: '',
    rateLimit: { requests: 100_000, window: '1m' },
  };
}

export async function stopReferenceUpstream(reference: ReferenceUpstream | undefined): Promise<void> {
  if (reference?.child.exitCode !== null || reference.child.signalCode !== null) return;
  const exited = new Promise((resolve) => reference.child.once('exit', resolve));
  reference.child.kill('SIGTERM');
  await exited;
}

/**
 * server-everything's 17 tools. Four appear only for clients declaring sampling, elicitation or
 * roots, which the gateway's client does (it relays them to the calling agent).
 */
export const EVERYTHING_TOOLS = [
  'echo',
  'get-annotated-message',
  'get-env',
  'get-roots-list',
  'get-resource-links',
  'get-resource-reference',
  'get-structured-content',
  'get-sum',
  'get-tiny-image',
  'gzip-file-as-resource',
  'simulate-research-query',
  'toggle-simulated-logging',
  'toggle-subscriber-updates',
  'trigger-elicitation-request',
  'trigger-long-running-operation',
  'trigger-sampling-request',
  'trigger-url-elicitation',
];

/** A stdio upstream entry running a Node script with no shell and only `env`. */
export function stdioUpstream(name: string, script: string, args: string[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name,
    transport: 'stdio',
    command: process.execPath,
    args: [script, ...args],
    category: 'system',
    permissions: ['tools:execute'],
    ...extra,
  };
}

export function writeUpstreamsFile(dir: string, upstreams: unknown[]): string {
  const path = join(dir, 'upstreams.json');
  writeFileSync(path, JSON.stringify({ upstreams }, null, 2));
  return path;
}

export interface HttpUpstream {
  url: string;
  port: number;
  child: ChildProcess;
  /** SIGKILL: the upstream vanishes without a goodbye. */
  kill(): Promise<void>;
}

/**
 * server-everything in Streamable HTTP mode on `port`. It binds every interface by itself; the
 * preloaded loopback-only.cjs makes it bind 127.0.0.1, and we only ever talk to it there.
 */
export async function startEverythingHttp(port: number): Promise<HttpUpstream> {
  const child = spawn(process.execPath, ['--require', LOOPBACK_ONLY, EVERYTHING, 'streamableHttp'], {
    env: { PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let output = '';
    // A hang guard, wide enough for a loaded machine (15 s failed at load average 20 on 2 cores).
    const timer = setTimeout(() => reject(new Error(`server-everything did not start: ${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += String(chunk);
      if (output.includes(`listening on port ${port}`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server-everything exited (${code}): ${output}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    port,
    child,
    kill: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

export async function listTools(t: TestApp, caller: Caller): Promise<Array<Record<string, any>>> {
  const res = await http(t.baseUrl, 'GET', '/api/v1/tools?limit=100', { token: caller.token });
  if (res.status !== 200) throw new Error(`GET /tools: ${res.status} ${res.text}`);
  return res.body.tools;
}

export async function getTool(t: TestApp, caller: Caller, id: string): Promise<Record<string, any> | undefined> {
  const res = await http(t.baseUrl, 'GET', `/api/v1/tools/${encodeURIComponent(id)}`, { token: caller.token });
  return res.status === 200 ? res.body : undefined;
}

export type UpstreamHealth = {
  status: string;
  state: string;
  toolCount: number;
  lastError: string | null;
  lastConnectedAt: string | null;
  [key: string]: unknown;
};

/** One administrator login per app: upstream figures are for admins (the public health shows statuses only). */
const adminLogins = new WeakMap<TestApp, Promise<Caller>>();

export async function upstreamHealth(t: TestApp, name: string): Promise<UpstreamHealth | undefined> {
  if (!adminLogins.has(t)) adminLogins.set(t, login(t, ADMIN_EMAIL));
  const res = await http(t.baseUrl, 'GET', '/api/v1/admin/health', { token: (await adminLogins.get(t)!).token });
  return res.body?.components?.[`upstream:${name}`];
}

/** An official v2 SDK client on the gateway's /api/v1/mcp, pinned to 2026-07-28. */
export async function mcpClient(t: TestApp, caller: Caller): Promise<Client> {
  const client = new Client({ name: 'upstream-e2e', version: '1.0.0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${t.baseUrl}/api/v1/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${caller.token}` } },
    }),
  );
  return client;
}

/** An official v2 SDK client straight to an upstream (no gateway): what the upstream itself answers. */
export async function directClient(url: string, token?: string): Promise<Client> {
  const client = new Client({ name: 'upstream-e2e-direct', version: '1.0.0' });
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

/** The key a 2026-07-28 server adds to every result's _meta: it names the server of that hop (the gateway, to agents). */
export const SERVER_INFO_META = 'io.modelcontextprotocol/serverInfo';

/** A result's _meta without the hop's own serverInfo (undefined when nothing else is left): what a gateway relays. */
export function relayedMeta(meta: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!meta) return undefined;
  const { [SERVER_INFO_META]: _hop, ...rest } = meta;
  return Object.keys(rest).length > 0 ? rest : undefined;
}

/** Every tool name the gateway shows this client, over every page. */
export async function mcpToolNames(client: Client): Promise<string[]> {
  const names: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listTools(cursor ? { cursor } : {}, { cacheMode: 'refresh' });
    names.push(...page.tools.map((tool) => tool.name));
    cursor = page.nextCursor;
  } while (cursor);
  return names;
}

/** server-everything writes the wall-clock time it made a dynamic resource into it: two reads may straddle a second. */
const CLOCK = /\d{1,2}:\d{2}:\d{2}( ?[AP]M)?/g;

/** Any value (resource contents, prompt messages with embedded resources, tool results) with the clock taken out of its strings and (decoded) blobs. */
export function withoutClock<T>(value: T): T {
  return JSON.parse(
    JSON.stringify(value, (key, item: unknown) => {
      if (typeof item !== 'string') return item;
      if (key === 'blob') return Buffer.from(item, 'base64').toString('utf8').replace(CLOCK, '<time>');
      return item.replace(CLOCK, '<time>');
    }),
  ) as T;
}
