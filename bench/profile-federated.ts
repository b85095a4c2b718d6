/**
 * Where a federated call's CPU goes (issue 18): starts P4's upstream and a gateway federating it
 * (as P4 does), warms up, then profiles the gateway (this process, through the inspector) while
 * a closed loop of one kind of request runs, and prints the CPU per call of the gateway and of
 * the upstream process (/proc) and the profile's top functions by self and inclusive time.
 *
 *   npm run bench:profile -- [call|builtin|get|read|direct] [seconds]
 *   npm run bench:profile -- p3 [seconds]   P3's gateway (no upstream) and its built-in tool_echo call
 *   npm run bench:profile -- hop [calls]   the upstream hop alone: UpstreamToolProvider.execute and the
 *                                          prompts/get and resources/read forwards, 10 at a time, in this process
 *                                          (BENCH_HOP_PROFILE=prompts/get or resources/read profiles that hop instead of tools/call)
 *   (the .cpuprofile is written to BENCH_PROFILE_OUT, default /tmp/federated-<kind>.cpuprofile)
 *   BENCH_PROFILE_HEAP=1: a sampling heap profile instead, keeping what garbage collection freed (what
 *   the young generation pays for), summarised as bytes allocated per call (written to <out>.heapprofile)
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import type { INestApplication } from '@nestjs/common';
import { UpstreamRegistry } from '@app/tools';
import { runMain, log } from './support/bench-util';
import { raiseToolLimit, startGateway } from './support/gateway';
import { closedLoop, meteredLoop, Target } from './support/load';
import { mcpRequest } from './support/mcp-request';
import { HeapProfile, summariseAllocations, summariseProfile } from './support/profile-summary';
import { Upstream, withFederatedGateway } from './support/upstream';
import { cpuSeconds } from './support/cpu';

async function main(): Promise<void> {
  const kind = process.argv[2] ?? 'call';
  const seconds = Number(process.argv[3] ?? 10);
  const out = process.env.BENCH_PROFILE_OUT ?? `/tmp/federated-${kind}.cpuprofile`;
  if (kind === 'p3') return builtinAlone(seconds, out);
  await withFederatedGateway(async (gateway, upstream) => {
    const endpoint = `${gateway.url}/api/v1/mcp`;
    await raiseToolLimit(gateway.url, gateway.token, 'tool_echo');
    const targets: Record<string, Target> = {
      call: mcpRequest(endpoint, 'tools/call', { name: 'bench.echo', arguments: { message: 'hello, bench' } }, gateway.token),
      builtin: mcpRequest(endpoint, 'tools/call', { name: 'tool_echo', arguments: { message: 'hello, bench' } }, gateway.token),
      get: mcpRequest(endpoint, 'prompts/get', { name: 'bench.greeting', arguments: { name: 'bench' } }, gateway.token),
      read: mcpRequest(endpoint, 'resources/read', { uri: 'mcp-upstream://bench/bench://doc' }, gateway.token),
      direct: mcpRequest(upstream.url, 'tools/call', { name: 'echo', arguments: { message: 'hello, bench' } }),
    };
    if (kind === 'hop') return hop(gateway.app, upstream, Number(process.argv[3] ?? 3000), out);
    const target = targets[kind];
    if (!target) throw new Error(`unknown kind ${kind}; one of ${Object.keys(targets).join(', ')}`);
    await closedLoop(target, 3, 10);
    const upstreamPid = upstream.child.pid!;
    const plain = await meteredLoop(target, seconds, 10, [process.pid]);
    const up = await meteredLoop(target, seconds, 10, [upstreamPid]);
    log(
      `${kind}: ${plain.rps.toFixed(0)}/s, gateway ${plain.cpuUs.toFixed(0)} µs CPU per call; upstream ${up.cpuUs.toFixed(0)} µs per call`,
    );
    const trips = await databaseRoundTrips(() => closedLoop(target, Math.min(seconds, 5), 10));
    log(
      `${kind}: ${trips.perCall.toFixed(2)} PostgreSQL round trips per call, ${trips.commitsPerCall.toFixed(2)} COMMITs per call ` +
        `(${trips.calls} calls, ${trips.rps.toFixed(0)}/s, counted in a run of their own)`,
    );
    await profiled(out, async () => {
      const result = await closedLoop(target, seconds, 10);
      log(`profiled ${result.total} calls (${result.rps.toFixed(0)}/s)`);
      return result.total;
    });
  });
}

/** P3's set-up: a gateway with no upstream, its built-in tool_echo called over MCP (2026-07-28). */
async function builtinAlone(seconds: number, out: string): Promise<void> {
  const gateway = await startGateway();
  try {
    await raiseToolLimit(gateway.url, gateway.token, 'tool_echo');
    const target = mcpRequest(
      `${gateway.url}/api/v1/mcp`,
      'tools/call',
      { name: 'tool_echo', arguments: { message: 'hello, bench' } },
      gateway.token,
    );
    await closedLoop(target, 3, 10);
    const plain = await meteredLoop(target, seconds, 10, [process.pid]);
    log(`p3: ${plain.rps.toFixed(0)}/s, gateway ${plain.cpuUs.toFixed(0)} µs CPU per call`);
    await profiled(out, async () => {
      const result = await closedLoop(target, seconds, 10);
      log(`profiled ${result.total} calls (${result.rps.toFixed(0)}/s)`);
      return result.total;
    });
  } finally {
    await gateway.close();
  }
}

/**
 * The gateway's CPU per upstream hop (process.cpuUsage around `calls` requests, 10 in flight), without
 * the HTTP endpoint, authentication, the pipeline or the audit: what the provider and the SDK client cost;
 * beside it the upstream's CPU per call (/proc), and the upstream's for the same number of direct requests
 * (P4's direct ones, through the global fetch) at the same concurrency: what the gateway's requests cost it.
 */
async function hop(app: INestApplication, upstream: Upstream, calls: number, out: string): Promise<void> {
  const provider = app.get(UpstreamRegistry).get('bench')!;
  const client = provider.connectedClient()!;
  const ctx = { signal: new AbortController().signal, userId: 'bench', permissions: ['tools:execute'] };
  const kinds: Record<string, () => Promise<unknown>> = {
    'tools/call (provider.execute)': () => provider.execute('bench.echo', { message: 'hello, bench' }, ctx),
    'prompts/get (client.getPrompt)': () => {
      const { params, headers } = provider.track(undefined);
      return client.getPrompt({ name: 'greeting', arguments: { name: 'bench' }, ...params }, { timeout: 30_000, headers });
    },
    'resources/read (client.readResource)': () => {
      const { params, headers } = provider.track(undefined);
      return client.readResource({ uri: 'bench://doc', ...params }, { timeout: 30_000, cacheMode: 'bypass', headers });
    },
  };
  const direct = mcpRequest(upstream.url, 'tools/call', { name: 'echo', arguments: { message: 'hello, bench' } });
  const directOnce = async () => {
    const response = await fetch(direct.url, { method: direct.method, headers: direct.headers, body: direct.body });
    await response.text();
  };
  const upstreamPid = upstream.child.pid!;
  for (const [name, once] of Object.entries({ ...kinds, 'tools/call direct (the upstream alone)': directOnce })) {
    await run(once, Math.min(calls, 500));
    const cpu = process.cpuUsage();
    const upstreamCpu = cpuSeconds(upstreamPid);
    const started = performance.now();
    await run(once, calls);
    const used = process.cpuUsage(cpu);
    const upstreamUs = ((cpuSeconds(upstreamPid) - upstreamCpu) * 1e6) / calls;
    const wall = performance.now() - started;
    log(
      `hop ${name}: ${((used.user + used.system) / calls).toFixed(0)} µs CPU per call in the gateway, ` +
        `${upstreamUs.toFixed(0)} µs in the upstream, ${((calls / wall) * 1000).toFixed(0)}/s`,
    );
  }
  // One kind's hop, profiled: the tool call's, or the one BENCH_HOP_PROFILE names (a prefix, e.g. `prompts/get`).
  const named = process.env.BENCH_HOP_PROFILE;
  const profiledKind = (named && Object.keys(kinds).find((name) => name.startsWith(named))) || 'tools/call (provider.execute)';
  log(`profiling the hop of ${profiledKind}`);
  await profiled(out, async () => {
    await run(kinds[profiledKind], calls);
    return calls;
  });
}

/**
 * PostgreSQL round trips of this process (the gateway) while `work` runs: pg sends one simple query
 * (Connection.query) or one extended query ending in Sync at a time per connection and waits for its
 * answer, so their count is the round-trip count; COMMITs are the group commit's transactions.
 */
async function databaseRoundTrips(work: () => Promise<{ total: number; rps: number }>) {
  const connection = (require('pg/lib/connection') as { prototype: Record<string, (...args: unknown[]) => unknown> }).prototype;
  const { query, sync } = connection;
  let trips = 0;
  let commits = 0;
  connection.query = function (this: unknown, text: unknown) {
    trips++;
    if (typeof text === 'string' && /^\s*COMMIT\b/i.test(text)) commits++;
    return query.call(this, text);
  };
  connection.sync = function (this: unknown) {
    trips++;
    return sync.call(this);
  };
  try {
    const result = await work();
    const calls = Math.max(result.total, 1);
    return { perCall: trips / calls, commitsPerCall: commits / calls, calls: result.total, rps: result.rps };
  } finally {
    connection.query = query;
    connection.sync = sync;
  }
}

/** `n` calls of `once`, 10 in flight. */
async function run(once: () => Promise<unknown>, n: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 10 }, async () => {
      while (next++ < n) await once();
    }),
  );
}

/**
 * Runs `work` (which answers how many calls it made) under the inspector's CPU profiler, or with
 * BENCH_PROFILE_HEAP=1 its sampling heap profiler; writes the profile next to `out` and prints its summary.
 */
async function profiled(out: string, work: () => Promise<number>): Promise<void> {
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params?: object) =>
    new Promise<T>((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result as T))));
  if (process.env.BENCH_PROFILE_HEAP === '1') {
    await post('HeapProfiler.enable');
    // Every 4 KB allocated on average; the objects young- and old-generation collection freed stay in the profile.
    await post('HeapProfiler.startSampling', {
      samplingInterval: 4096,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    const calls = await work();
    const { profile } = await post<{ profile: HeapProfile }>('HeapProfiler.stopSampling');
    session.disconnect();
    const file = `${out.replace(/\.cpuprofile$/, '')}.heapprofile`;
    writeFileSync(file, JSON.stringify(profile));
    log(`heap profile: ${file}`);
    log(summariseAllocations(profile, Math.max(calls, 1), Number(process.env.BENCH_PROFILE_TOP ?? 30)));
    return;
  }
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
  await work();
  const { profile } = await post<{ profile: object }>('Profiler.stop');
  session.disconnect();
  writeFileSync(out, JSON.stringify(profile));
  log(`profile: ${out}`);
  log(summariseProfile(profile as never, Number(process.env.BENCH_PROFILE_TOP ?? 40)));
}

runMain(() => main().then(() => process.exit(0)));
