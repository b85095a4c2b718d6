import type { CatalogTool } from '../catalog/catalog-tool';
import { ToolSchemaValidator } from './tool-schema-validator';

const tool = (inputSchema: Record<string, unknown>, outputSchema: Record<string, unknown> = {}, hash = 'h1') =>
  ({ definitionHash: hash, inputSchema, outputSchema }) as CatalogTool;

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['operation', 'items'],
  properties: {
    operation: { type: 'string', enum: ['list', 'read'] },
    items: {
      type: 'array',
      items: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, 'odd key': { type: 'integer' } } },
    },
    url: { type: 'string', format: 'uri' },
  },
};

describe('ToolSchemaValidator', () => {
  const validator = new ToolSchemaValidator();

  it('accepts valid parameters', () => {
    expect(validator.validateInput(tool(schema), { operation: 'list', items: [{ name: 'a' }] })).toEqual([]);
  });

  it('names each offending field by its path under parameters, once', () => {
    const details = validator.validateInput(tool(schema), {
      operation: 'delete',
      items: [{ name: 'a' }, { 'odd key': 'x' }],
      url: 'not a uri',
      extra: true,
    });
    expect(details.map((d) => d.field).sort()).toEqual(
      ['parameters.extra', 'parameters.items[1].name', 'parameters.items[1]["odd key"]', 'parameters.operation', 'parameters.url'].sort(),
    );
    expect(details.find((d) => d.field === 'parameters.operation')).toEqual({
      field: 'parameters.operation',
      message: 'must be one of: "list", "read"',
      code: 'enum',
    });
    expect(details.find((d) => d.field === 'parameters.extra')?.message).toBe('is not allowed');
    expect(validator.validateInput(tool(schema), {}).map((d) => d.field)).toEqual(['parameters.operation', 'parameters.items']);
  });

  it('compiles each definition once', () => {
    const local = new ToolSchemaValidator();
    const first = local.prepare(tool(schema, {}, 'same'));
    expect(local.prepare(tool({ type: 'string' }, {}, 'same'))).toBe(first);
    expect(local.prepare(tool(schema, {}, 'other'))).not.toBe(first);
  });

  it('understands draft 2020-12 schemas and refuses broken ones', () => {
    const modern = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: { n: { type: 'integer' }, pair: { type: 'array', prefixItems: [{ type: 'string' }] } },
    };
    expect(validator.validateInput(tool(modern, {}, 'modern'), { n: 'x' }).map((d) => d.field)).toEqual(['parameters.n']);
    expect(() => validator.prepare(tool({ type: 'no-such-type' }, {}, 'broken'))).toThrow();
  });

  it('checks output, naming fields under result', () => {
    const out = tool({}, { type: 'object', required: ['count'], properties: { count: { type: 'integer' } } }, 'out');
    expect(validator.checkOutput(out, { count: 3 })).toBeNull();
    expect(validator.checkOutput(out, { count: 'many' })).toEqual([{ field: 'result.count', message: 'must be integer', code: 'type' }]);
  });
});
