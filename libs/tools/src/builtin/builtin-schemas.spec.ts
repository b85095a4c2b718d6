import Ajv2020 from 'ajv/dist/2020';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@app/core';
import type { JsonSchema, ToolDefinition } from '../provider/tool-provider';
import { BuiltinToolProvider } from './builtin-tool.provider';

/** Every sub-schema of a schema, with its JSON pointer, including booleans. */
function subSchemas(schema: unknown, pointer = ''): Array<{ pointer: string; schema: unknown }> {
  const found = [{ pointer: pointer || '/', schema }];
  if (typeof schema !== 'object' || schema === null) return found;
  const s = schema as Record<string, unknown>;
  for (const key of ['items', 'additionalProperties', 'propertyNames', 'not', 'if', 'then', 'else', 'contains']) {
    if (s[key] !== undefined) found.push(...subSchemas(s[key], `${pointer}/${key}`));
  }
  for (const key of ['allOf', 'anyOf', 'oneOf', 'prefixItems']) {
    if (Array.isArray(s[key])) (s[key] as unknown[]).forEach((sub, i) => found.push(...subSchemas(sub, `${pointer}/${key}/${i}`)));
  }
  for (const key of ['properties', 'patternProperties', '$defs', 'definitions']) {
    if (s[key] && typeof s[key] === 'object') {
      for (const [name, sub] of Object.entries(s[key] as Record<string, unknown>))
        found.push(...subSchemas(sub, `${pointer}/${key}/${name}`));
    }
  }
  return found;
}

/**
 * What MCP clients check before trusting a tool (the Inspector's strict portability check, the
 * SDKs' output validation): an object root, no boolean sub-schemas, draft 2020-12 under ajv's
 * strictest settings — so every built-in tool advertises both schemas and returns structuredContent.
 */
describe('built-in tool schemas are strict-portable', () => {
  let dataDir: string;
  let tools: ToolDefinition[];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'smcp-schemas-'));
    tools = await new BuiltinToolProvider(loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir })).listTools();
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('covers every built-in tool, each with an input and an output schema', () => {
    expect(tools.map((t) => t.id).sort()).toEqual([
      'tool_echo',
      'tool_filesystem',
      'tool_http_fetch',
      'tool_json_query',
      'tool_statistics',
      'tool_system_metrics',
    ]);
    expect(tools.filter((t) => !t.outputSchema).map((t) => t.id)).toEqual([]);
  });

  it.each(['inputSchema', 'outputSchema'] as const)(
    '%s: object root, no boolean sub-schema, valid draft 2020-12 under strict ajv',
    (which) => {
      const ajv = new Ajv2020({ strict: true, allErrors: true });
      for (const tool of tools) {
        const schema = tool[which] as JsonSchema;
        expect({ tool: tool.id, rootType: schema.type }).toEqual({ tool: tool.id, rootType: 'object' });
        // `additionalProperties: false` is the one boolean every client reads (closed objects); any other
        // boolean sub-schema (`true` above all) is what the Inspector's portability check reports.
        const booleans = subSchemas(schema)
          .filter((s) => typeof s.schema === 'boolean' && !(s.schema === false && s.pointer.endsWith('/additionalProperties')))
          .map((s) => `${tool.id}${s.pointer}`);
        expect(booleans).toEqual([]);
        expect(ajv.validateSchema(schema)).toBe(true);
        expect(() => ajv.compile(schema)).not.toThrow();
      }
    },
  );
});
