import { ToolError, ToolErrorCode, throwIfAborted } from '../provider/tool-error';
import type { JsonSchema, ToolCallContext, ToolDefinition } from '../provider/tool-provider';
import type { BuiltinTool } from './builtin-tool';
import { FilesystemSandbox, SandboxOptions } from './filesystem-sandbox';
import { nameMatcher } from './name-glob';
import { MAX_PATH_LENGTH, parseSandboxPath } from './sandbox-path';
import { requiredWhen } from './schema-helpers';

/** Held in `ctx.permissions` by callers allowed to write; reading needs only the tool's own permissions. */
export const FILESYSTEM_WRITE_PERMISSION = 'tools:filesystem:write';

type Operation = 'list' | 'stat' | 'read' | 'search' | 'write';

interface FilesystemInput {
  operation: Operation;
  path?: string;
  pattern?: string;
  maxDepth?: number;
  maxResults?: number;
  limit?: number;
  content?: string;
  createDirectories?: boolean;
  overwrite?: boolean;
}

const ENTRY_TYPE = { type: 'string', enum: ['file', 'directory', 'symlink', 'other'] };
const TIMESTAMP = { type: 'string', description: 'ISO 8601' };

function outputBranch(operation: Operation, properties: Record<string, JsonSchema>): JsonSchema {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['operation', 'path', ...Object.keys(properties)],
    properties: { operation: { type: 'string', const: operation }, path: { type: 'string' }, ...properties },
  };
}

/** system — list, stat, read, search and (with `tools:filesystem:write`) write inside the sandbox root. */
export class FilesystemTool implements BuiltinTool {
  readonly definition: ToolDefinition;
  private readonly sandbox: FilesystemSandbox;

  constructor(private readonly options: SandboxOptions) {
    this.sandbox = new FilesystemSandbox(options);
    this.definition = {
      id: 'tool_filesystem',
      name: 'filesystem',
      title: 'Sandboxed filesystem',
      description:
        "Lists, inspects, reads, searches and writes UTF-8 text files inside the server's sandbox directory. " +
        'Paths are relative to the sandbox root ("." is the root); nothing outside it is reachable. ' +
        `Reads and writes are limited to ${options.maxFileBytes} bytes; writing needs the ${FILESYSTEM_WRITE_PERMISSION} permission.`,
      version: '1.0.0',
      category: 'system',
      inputSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['operation'],
        properties: {
          operation: {
            type: 'string',
            enum: ['list', 'stat', 'read', 'search', 'write'],
            description: 'list: a directory; stat: one entry; read: a text file; search: names below a directory; write: a text file',
          },
          path: {
            type: 'string',
            minLength: 1,
            maxLength: MAX_PATH_LENGTH,
            description: 'Relative to the sandbox root; defaults to "." for list and search',
          },
          pattern: {
            type: 'string',
            minLength: 1,
            maxLength: 256,
            pattern: '^[^/]+$',
            description: 'search: a name glob (* and ?) or a substring, case-insensitive',
          },
          maxDepth: { type: 'integer', minimum: 0, maximum: 16, default: 8, description: 'search: directory levels below path' },
          maxResults: { type: 'integer', minimum: 1, maximum: 1000, default: 100, description: 'search: matches returned at most' },
          limit: { type: 'integer', minimum: 1, maximum: 10000, default: 1000, description: 'list: entries returned at most' },
          content: { type: 'string', maxLength: options.maxFileBytes, description: 'write: UTF-8 text' },
          createDirectories: { type: 'boolean', default: false, description: 'write: create missing parent directories' },
          overwrite: { type: 'boolean', default: false, description: 'write: replace an existing file' },
        },
        allOf: [
          requiredWhen(['stat', 'read', 'write'], { path: 'string' }),
          requiredWhen(['search'], { pattern: 'string' }),
          requiredWhen(['write'], { content: 'string' }),
        ],
      },
      // An object root (what MCP advertises and validates structuredContent against), one branch per operation.
      outputSchema: {
        type: 'object',
        oneOf: [
          outputBranch('list', {
            entries: {
              type: 'array',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['name', 'type', 'size', 'modifiedAt'],
                properties: { name: { type: 'string' }, type: ENTRY_TYPE, size: { type: 'integer', minimum: 0 }, modifiedAt: TIMESTAMP },
              },
            },
            truncated: { type: 'boolean' },
          }),
          outputBranch('stat', { type: ENTRY_TYPE, size: { type: 'integer', minimum: 0 }, modifiedAt: TIMESTAMP, createdAt: TIMESTAMP }),
          outputBranch('read', {
            content: { type: 'string' },
            size: { type: 'integer', minimum: 0 },
            encoding: { type: 'string', const: 'utf-8' },
          }),
          outputBranch('search', {
            pattern: { type: 'string' },
            matches: {
              type: 'array',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['path', 'type'],
                properties: { path: { type: 'string' }, type: ENTRY_TYPE },
              },
            },
            truncated: { type: 'boolean' },
          }),
          outputBranch('write', { size: { type: 'integer', minimum: 0 }, created: { type: 'boolean' } }),
        ],
      },
      permissions: ['tools:execute'],
      rateLimit: { requests: 60, window: '1m' },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
      enabledByDefault: true,
    };
  }

  /** Creates the sandbox root; the provider calls it at start. */
  async init(): Promise<void> {
    await this.sandbox.realRoot();
  }

  async execute(raw: unknown, ctx: ToolCallContext): Promise<unknown> {
    const input = raw as FilesystemInput;
    throwIfAborted(ctx.signal);
    // Checked before the path is even parsed: a caller without the grant learns nothing about the tree.
    if (input.operation === 'write' && !ctx.permissions.includes(FILESYSTEM_WRITE_PERMISSION)) {
      throw new ToolError(ToolErrorCode.PERMISSION_DENIED, `writing files needs the ${FILESYSTEM_WRITE_PERMISSION} permission`);
    }
    const path = parseSandboxPath(input.path ?? '.');

    switch (input.operation) {
      case 'list': {
        const { entries, truncated } = await this.sandbox.list(path, input.limit ?? 1000, ctx.signal);
        return { operation: 'list', path: path.display, entries, truncated };
      }
      case 'stat':
        return { operation: 'stat', path: path.display, ...(await this.sandbox.stat(path)) };
      case 'read': {
        const { content, size } = await this.sandbox.read(path, ctx.signal);
        return { operation: 'read', path: path.display, content, size, encoding: 'utf-8' };
      }
      case 'search': {
        const pattern = input.pattern ?? '';
        if (pattern.includes('/') || pattern.includes('\0'))
          throw new ToolError(ToolErrorCode.INVALID_INPUT, 'pattern matches names, not paths');
        const found = await this.sandbox.search(path, nameMatcher(pattern), input.maxDepth ?? 8, input.maxResults ?? 100, ctx.signal);
        return { operation: 'search', path: path.display, pattern, matches: found.matches, truncated: found.truncated };
      }
      case 'write': {
        const content = Buffer.from(input.content ?? '', 'utf8');
        if (content.length > this.options.maxFileBytes) {
          throw new ToolError(ToolErrorCode.TOO_LARGE, `content is ${content.length} bytes; the limit is ${this.options.maxFileBytes}`);
        }
        const { created } = await this.sandbox.write(
          path,
          content,
          { createDirectories: input.createDirectories ?? false, overwrite: input.overwrite ?? false },
          ctx.signal,
        );
        return { operation: 'write', path: path.display, size: content.length, created };
      }
      default:
        throw new ToolError(ToolErrorCode.INVALID_INPUT, 'unknown operation');
    }
  }
}
