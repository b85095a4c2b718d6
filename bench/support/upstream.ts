import { ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Gateway, startGateway } from './gateway';

export interface Upstream {
  /** Its MCP endpoint. */
  url: string;
  child: ChildProcess;
  stop(): void;
}

/** The bench upstream (echo-upstream.cjs: `echo` plus `extraTools` more) in a process of its own. */
export async function startUpstream(extraTools = 0): Promise<Upstream> {
  const child = spawn(process.execPath, [join(__dirname, 'echo-upstream.cjs'), String(extraTools)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(String(chunk).trim())));
    child.once('exit', (code) => reject(new Error(`the bench upstream exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}/mcp`, child, stop: () => void child.kill('SIGTERM') };
}

/** MCP_UPSTREAMS_FILE for one upstream named `bench` (tools `bench.*`), its limits on but far above a run. */
export function upstreamsFile(dataDir: string, url: string): Record<string, string> {
  const file = join(dataDir, 'upstreams.json');
  writeFileSync(
    file,
    JSON.stringify({
      upstreams: [
        {
          name: 'bench',
          transport: 'http',
          url,
          category: 'data',
          permissions: ['tools:execute'],
          rateLimit: { requests: 1_000_000, window: '1h' },
          maxConcurrentCalls: 4096,
        },
      ],
    }),
  );
  return { MCP_UPSTREAMS_FILE: file };
}

/** Polls until the catalogue lists the tool as enabled (federated tools arrive after the first listing). */
export async function waitForTool(appUrl: string, token: string, toolId: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`${appUrl}/api/v1/tools/${toolId}`, { headers: { authorization: `Bearer ${token}` } });
    const text = await response.text();
    if (response.status === 200 && JSON.parse(text).enabled) return;
    if (Date.now() > deadline) throw new Error(`${toolId} never appeared in the catalogue: ${response.status} ${text.slice(0, 300)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The bench upstream and a gateway federating it as `bench` (its `bench.echo` listed), for the length of `run`. */
export async function withFederatedGateway<T>(run: (gateway: Gateway, upstream: Upstream) => Promise<T>): Promise<T> {
  const upstream = await startUpstream();
  try {
    const gateway = await startGateway({}, (dataDir) => upstreamsFile(dataDir, upstream.url));
    try {
      await waitForTool(gateway.url, gateway.token, 'bench.echo');
      return await run(gateway, upstream);
    } finally {
      await gateway.close();
    }
  } finally {
    upstream.stop();
  }
}
