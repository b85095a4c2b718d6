/** A V8 .cpuprofile summarised: top functions by self and by inclusive time, and self time by package or file. */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const IDLE = new Set(['(idle)', '(program)', '(garbage collector)']);

/** Where a frame lives: `pkg` for node_modules/<pkg>, `node:<module>` for Node's own, else the path under the repo. */
export function placeOf(url: string): string {
  if (!url) return '(native)';
  if (url.startsWith('node:')) return url;
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const repo = /\/(apps|libs|bench|test)\//.exec(url);
  return repo ? url.slice(repo.index + 1) : url;
}

export function summariseProfile(profile: CpuProfile, top = 40): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const label = (node: ProfileNode) =>
    `${node.callFrame.functionName || '(anonymous)'} ${placeOf(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;
  const selfUs = new Map<string, number>();
  const inclusiveUs = new Map<string, number>();
  const placeUs = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const node = byId.get(profile.samples[i]);
    if (!node) continue;
    total += dt;
    if (IDLE.has(node.callFrame.functionName)) {
      if (node.callFrame.functionName === '(idle)') idle += dt;
      else selfUs.set(node.callFrame.functionName, (selfUs.get(node.callFrame.functionName) ?? 0) + dt);
      continue;
    }
    const own = label(node);
    selfUs.set(own, (selfUs.get(own) ?? 0) + dt);
    const place = placeOf(node.callFrame.url);
    placeUs.set(place, (placeUs.get(place) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!;
      const name = label(frame);
      if (seen.has(name)) continue;
      seen.add(name);
      inclusiveUs.set(name, (inclusiveUs.get(name) ?? 0) + dt);
    }
  }
  const busy = total - idle;
  const pct = (us: number) => `${((us / busy) * 100).toFixed(1).padStart(5)}%`;
  const table = (title: string, entries: Map<string, number>) =>
    [
      `${title} (of ${(busy / 1000).toFixed(0)} ms busy)`,
      ...[...entries]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([name, us]) => `${pct(us)} ${(us / 1000).toFixed(0).padStart(6)} ms  ${name}`),
    ].join('\n');
  return [table('self time', selfUs), table('inclusive time', inclusiveUs), table('self time by package/file', placeUs)].join('\n\n');
}

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

/** A V8 sampling heap profile (HeapProfiler.stopSampling), taken with the objects garbage collection freed. */
export interface HeapProfile {
  head: HeapNode;
}

/**
 * Bytes allocated per call, from a sampling heap profile that kept the objects the collector freed
 * (what young-generation garbage collection pays for): in all, by the package or file of the
 * allocating frame, and by the nearest frame of this repository's own code above it (whose work
 * the allocation is; a frame of ours allocating directly counts as itself).
 */
export function summariseAllocations(profile: HeapProfile, calls: number, top = 30): string {
  const byPlace = new Map<string, number>();
  const byOwner = new Map<string, number>();
  let total = 0;
  const label = (node: HeapNode) =>
    `${node.callFrame.functionName || '(anonymous)'} ${placeOf(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`;
  const ours = (node: HeapNode) => /\/(apps|libs)\//.test(node.callFrame.url);
  // Iterative: allocation stacks can be deep.
  const stack: Array<{ node: HeapNode; owner: string }> = [{ node: profile.head, owner: '(none of ours)' }];
  while (stack.length > 0) {
    const { node, owner: above } = stack.pop()!;
    const owner = ours(node) ? label(node) : above;
    if (node.selfSize > 0) {
      total += node.selfSize;
      const place = node.callFrame.url ? placeOf(node.callFrame.url) : `(V8) ${node.callFrame.functionName || '(anonymous)'}`;
      byPlace.set(place, (byPlace.get(place) ?? 0) + node.selfSize);
      byOwner.set(owner, (byOwner.get(owner) ?? 0) + node.selfSize);
    }
    for (const child of node.children) stack.push({ node: child, owner });
  }
  const perCall = (bytes: number) => `${(bytes / calls).toFixed(0).padStart(7)} B`;
  const table = (title: string, entries: Map<string, number>) =>
    [
      `${title} (${perCall(total).trim()} per call in all, ${calls} calls)`,
      ...[...entries]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([name, bytes]) => `${perCall(bytes)}  ${name}`),
    ].join('\n');
  return [table('allocated per call, by package/file', byPlace), table('allocated per call, by the nearest frame of ours', byOwner)].join(
    '\n\n',
  );
}
