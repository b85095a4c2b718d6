import Ajv from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import { Test, TestingModule } from '@nestjs/testing';
import { mkdtemp, realpath, rm, stat } from 'node:fs/promises';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APP_CONFIG, loadConfig } from '@app/core';
import { TOOL_CATEGORIES, ToolCallContext, ToolDefinition } from '../provider/tool-provider';
import { ToolRuntimeStats } from '../runtime/tool-runtime-stats';
import { BuiltinToolProvider } from './builtin-tool.provider';
import { FILESYSTEM_WRITE_PERMISSION } from './filesystem.tool';
import { failure } from './tool-call.test-helpers';

function ctx(permissions = ['tools:execute']): ToolCallContext {
  return { signal: new AbortController().signal, userId: 'usr_test', permissions };
}

describe('BuiltinToolProvider', () => {
  let dataDir: string;
  let server: Server;
  let port: number;
  let moduleRef: TestingModule;
  let provider: BuiltinToolProvider;
  let tools: ToolDefinition[];

  beforeAll(async () => {
    dataDir = await realpath(await mkdtemp(join(tmpdir(), 'tools-provider-')));
    server = createServer((_req, res) => res.end('{"ok":true}'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    const config = loadConfig({
      NODE_ENV: 'test',
      DATA_DIR: dataDir,
      TOOLS_HTTP_ALLOWED_HOSTS: '127.0.0.1',
      TOOLS_HTTP_ALLOW_PRIVATE: 'true',
      TOOLS_FS_MAX_READ_BYTES: '4096',
    });
    moduleRef = await Test.createTestingModule({
      providers: [{ provide: APP_CONFIG, useValue: config }, ToolRuntimeStats, BuiltinToolProvider],
    }).compile();
    await moduleRef.init();
    provider = moduleRef.get(BuiltinToolProvider);
    tools = await provider.listTools();
  });

  afterAll(async () => {
    await moduleRef?.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dataDir, { recursive: true, force: true });
  });

  it('creates the sandbox root under DATA_DIR at start', async () => {
    expect((await stat(join(dataDir, 'sandbox'))).isDirectory()).toBe(true);
  });

  it('offers every built-in tool, at least one per category', () => {
    expect(provider.name).toBe('builtin');
    expect(tools.map((t) => t.id).sort()).toEqual([
      'tool_echo',
      'tool_filesystem',
      'tool_http_fetch',
      'tool_json_query',
      'tool_statistics',
      'tool_system_metrics',
    ]);
    for (const category of TOOL_CATEGORIES) expect(tools.some((t) => t.category === category)).toBe(true);
  });

  it('describes each tool completely', () => {
    for (const tool of tools) {
      expect(tool.id).toMatch(/^tool_[a-z_]+$/);
      expect(tool.name).toBe(tool.id.slice('tool_'.length));
      expect(tool.description.length).toBeGreaterThan(20);
      expect(tool.version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(tool.permissions).toContain('tools:execute');
      expect(tool.rateLimit.requests).toBeGreaterThan(0);
      expect(tool.rateLimit.window).toMatch(/^\d+[smhd]$/);
      expect(tool.annotations).toBeDefined();
      expect(tool.enabledByDefault).toBe(true);
      // The contract sends `parameters` as an object, so every input schema is a closed object.
      expect(tool.inputSchema).toMatchObject({ type: 'object', additionalProperties: false });
    }
    expect(tools.find((t) => t.id === 'tool_echo')!.rateLimit).toEqual({ requests: 600, window: '1m' });
    expect(tools.find((t) => t.id === 'tool_filesystem')!.rateLimit).toEqual({ requests: 60, window: '1m' });
  });

  type Logger = { log(...args: unknown[]): void; warn(...args: unknown[]): void; error(...args: unknown[]): void };
  it.each([
    ['draft-07, strict', (logger: Logger) => new Ajv({ allErrors: true, strict: true, logger })],
    ['draft 2020-12, strict', (logger: Logger) => new Ajv2020({ allErrors: true, strict: true, logger })],
    ['default options', (logger: Logger) => new Ajv({ logger })],
  ])('has schemas that compile with ajv (%s) without warnings', (_label, makeAjv) => {
    const warnings: unknown[] = [];
    const ajv = makeAjv({ log: () => undefined, warn: (...args) => warnings.push(args), error: (...args) => warnings.push(args) });
    for (const tool of tools) {
      expect(() => ajv.compile(tool.inputSchema)).not.toThrow();
      expect(() => ajv.compile(tool.outputSchema)).not.toThrow();
    }
    expect(warnings).toEqual([]);
  });

  it('hands out copies of its definitions', async () => {
    const copy = await provider.listTools();
    copy[0].permissions.push('tampered');
    copy[0].rateLimit.requests = 1;
    const again = await provider.listTools();
    expect(again[0].permissions).not.toContain('tampered');
    expect(again[0].rateLimit.requests).not.toBe(1);
  });

  it('refuses unknown tools and input that does not match the schema, naming the fields', async () => {
    expect((await failure(provider.execute('tool_nope', {}, ctx()))).code).toBe('NOT_FOUND');
    const missing = await failure(provider.execute('tool_echo', {}, ctx()));
    expect(missing.code).toBe('INVALID_INPUT');
    expect(missing.details).toEqual([{ field: '/message', message: expect.any(String) }]);
    const extra = await failure(provider.execute('tool_echo', { message: 'x', shout: true }, ctx()));
    expect(extra.details).toEqual([{ field: '/shout', message: expect.any(String) }]);
    const wrong = await failure(provider.execute('tool_statistics', { operation: 'describe', values: [1, 'two'] }, ctx()));
    expect(wrong.details?.map((d) => d.field)).toEqual(['/values/1']);
    const conditional = await failure(provider.execute('tool_filesystem', { operation: 'read' }, ctx()));
    expect(conditional.details?.map((d) => d.field)).toContain('/path');
    expect((await failure(provider.execute('tool_echo', 'not an object', ctx()))).code).toBe('INVALID_INPUT');
  });

  it('runs every tool, each answer matching its output schema', async () => {
    const ajv = new Ajv({ allErrors: true, strict: true });
    const writer = ctx(['tools:execute', FILESYSTEM_WRITE_PERMISSION]);
    const calls: Array<[string, unknown, ToolCallContext]> = [
      ['tool_filesystem', { operation: 'write', path: 'dir/hello.txt', content: 'hi', createDirectories: true }, writer],
      ['tool_filesystem', { operation: 'read', path: 'dir/hello.txt' }, ctx()],
      ['tool_filesystem', { operation: 'list', path: 'dir' }, ctx()],
      ['tool_filesystem', { operation: 'stat', path: 'dir' }, ctx()],
      ['tool_filesystem', { operation: 'search', pattern: 'hello*' }, ctx()],
      ['tool_json_query', { expression: 'a[1]', document: { a: [1, 2] } }, ctx()],
      ['tool_http_fetch', { url: `http://127.0.0.1:${port}/` }, ctx()],
      ['tool_statistics', { operation: 'describe', values: [1, 2, 3] }, ctx()],
      ['tool_statistics', { operation: 'aggregate', records: [{ k: 'a', v: 1 }], groupBy: 'k', field: 'v' }, ctx()],
      ['tool_system_metrics', { sampleMs: 0 }, ctx()],
      ['tool_system_metrics', {}, ctx()],
      ['tool_echo', { message: 'ping' }, ctx()],
    ];
    for (const [toolId, input, callCtx] of calls) {
      const output = await provider.execute(toolId, input, callCtx);
      const validate = ajv.compile(tools.find((t) => t.id === toolId)!.outputSchema);
      expect([toolId, input, validate(output) ? 'valid' : validate.errors]).toEqual([toolId, input, 'valid']);
    }
    expect(await provider.execute('tool_filesystem', { operation: 'read', path: 'dir/hello.txt' }, ctx())).toMatchObject({ content: 'hi' });
    expect(await provider.execute('tool_http_fetch', { url: `http://127.0.0.1:${port}/` }, ctx())).toMatchObject({
      status: 200,
      body: '{"ok":true}',
    });
  });

  it('checks the abort signal before running a tool', async () => {
    const aborted = { ...ctx(), signal: AbortSignal.abort() };
    expect((await failure(provider.execute('tool_echo', { message: 'x' }, aborted))).code).toBe('ABORTED');
  });
});
