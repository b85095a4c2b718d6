import { Injectable } from '@nestjs/common';
import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import type { ErrorDetail } from '@app/core';
import type { JsonSchema, ToolDefinition } from '../provider/tool-provider';
import type { CatalogTool } from '../catalog/catalog-tool';

interface CompiledTool {
  input: ValidateFunction;
  output: ValidateFunction;
  /** Of a content-format tool with an MCP output schema: checks its `structuredContent`. */
  structured?: ValidateFunction;
}

type Schemas = Pick<CatalogTool, 'definitionHash' | 'inputSchema' | 'outputSchema'> & {
  definition?: Pick<ToolDefinition, 'resultFormat' | 'mcp'>;
};

/** More would only repeat the same mistake; the caller fixes these and tries again. */
const MAX_DETAILS = 20;
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * Tool input and output checks with ajv. Compiling is the expensive part, so each tool
 * definition is compiled once (keyed by its definition hash, which changes whenever a schema
 * does) and reused by every call.
 */
@Injectable()
export class ToolSchemaValidator {
  // strict: false because upstream servers write schemas with keywords ajv does not know.
  private readonly draft07 = withFormats(new Ajv({ allErrors: true, strict: false }));
  private readonly draft2020 = withFormats(new Ajv2020({ allErrors: true, strict: false }));
  private readonly compiled = new Map<string, CompiledTool>();

  /** Compiles (and caches) the tool's schemas; throws when one is not a valid JSON Schema. */
  prepare(tool: Schemas): CompiledTool {
    let entry = this.compiled.get(tool.definitionHash);
    if (!entry) {
      const structured = tool.definition?.resultFormat === 'content' ? tool.definition.mcp?.outputSchema : undefined;
      entry = { input: this.compile(tool.inputSchema), output: this.compile(tool.outputSchema) };
      if (structured) entry.structured = this.compile(structured);
      this.compiled.set(tool.definitionHash, entry);
    }
    return entry;
  }

  /** Drops compiled schemas of definitions no longer in the catalogue. */
  retainOnly(definitionHashes: Iterable<string>): void {
    const keep = new Set(definitionHashes);
    for (const hash of this.compiled.keys()) if (!keep.has(hash)) this.compiled.delete(hash);
  }

  /** One entry per offending field, named by its path under `parameters` (e.g. `parameters.items[2].name`). */
  validateInput(tool: CatalogTool, parameters: unknown): ErrorDetail[] {
    const validate = this.prepare(tool).input;
    if (validate(parameters)) return [];
    return toDetails(validate.errors ?? [], 'parameters');
  }

  /** Null when the output matches the schema, else a short description of the mismatches (for the log). */
  checkOutput(tool: CatalogTool, output: unknown): ErrorDetail[] | null {
    const { output: validate, structured } = this.prepare(tool);
    if (!validate(output)) return toDetails(validate.errors ?? [], 'result');
    // MCP: a successful result of a tool with an output schema carries conforming structuredContent.
    const result = output as { structuredContent?: unknown; isError?: unknown };
    if (!structured || result.isError === true) return null;
    if (result.structuredContent === undefined) return [{ field: 'result.structuredContent', message: 'is required', code: 'required' }];
    if (structured(result.structuredContent)) return null;
    return toDetails(structured.errors ?? [], 'result.structuredContent');
  }

  private compile(schema: JsonSchema): ValidateFunction {
    const uses2020 = typeof schema.$schema === 'string' && schema.$schema.includes('2020-12');
    return (uses2020 ? this.draft2020 : this.draft07).compile(schema);
  }
}

function withFormats<T extends Ajv>(ajv: T): T {
  addFormats(ajv);
  return ajv;
}

function toDetails(errors: ErrorObject[], root: string): ErrorDetail[] {
  const details: ErrorDetail[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    const { field, message } = describe(error, root);
    if (seen.has(field)) continue;
    seen.add(field);
    details.push({ field, message, code: error.keyword });
    if (details.length >= MAX_DETAILS) break;
  }
  return details;
}

function describe(error: ErrorObject, root: string): { field: string; message: string } {
  const base = root + pathOf(error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
    case 'dependentRequired':
    case 'dependencies':
      return { field: base + segment(String(params.missingProperty)), message: 'is required' };
    case 'additionalProperties':
      return { field: base + segment(String(params.additionalProperty)), message: 'is not allowed' };
    case 'unevaluatedProperties':
      return { field: base + segment(String(params.unevaluatedProperty)), message: 'is not allowed' };
    case 'enum':
      return { field: base, message: `must be one of: ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
    default:
      return { field: base, message: error.message ?? 'is invalid' };
  }
}

/** JSON Pointer (`/items/2/name`) to a JavaScript-style path (`.items[2].name`). */
function pathOf(pointer: string): string {
  if (!pointer) return '';
  return pointer
    .split('/')
    .slice(1)
    .map((raw) => segment(raw.replace(/~1/g, '/').replace(/~0/g, '~')))
    .join('');
}

function segment(name: string): string {
  if (/^(0|[1-9][0-9]*)$/.test(name)) return `[${name}]`;
  return IDENTIFIER.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`;
}
