import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { ListToolsResult, ProtocolError, ProtocolErrorCode, Tool } from '@modelcontextprotocol/server';
import { APP_CONFIG, AppConfig, Permission } from '@app/core';
import { CatalogTool, ToolCatalogService } from '@app/tools';
import type { McpCaller } from './mcp-caller';

export type ToolPage = ListToolsResult;

interface Entry {
  tool: CatalogTool;
  view: Tool;
}

/** Distinct permission sets remembered at once (one per role/grant combination in practice). */
const MAX_CACHED_LISTS = 1_000;
/** Serialised pages remembered at once (each can be hundreds of KB with a large catalogue). */
const MAX_CACHED_PAGES = 64;

/**
 * What each caller may see over MCP: enabled, available tools whose permissions the caller holds
 * (plus `tools:execute`), sorted by id, restricted to the context's tools on a context endpoint.
 * The MCP view of every tool is built once per catalogue change, and the visible list once per
 * distinct permission set, so `tools/list` costs a map lookup and a slice.
 */
@Injectable()
export class McpToolIndex implements OnModuleInit, OnModuleDestroy {
  private readonly pageSize: number;
  private views = new Map<string, Tool>();
  private lists = new Map<string, Entry[]>();
  private pages = new Map<string, { toolsJson: Buffer; nextCursor?: string }>();
  private readonly listeners = new Set<() => void>();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly catalog: ToolCatalogService,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.pageSize = config.mcp.pageSize;
  }

  onModuleInit(): void {
    this.unsubscribe = this.catalog.onChanged(() => {
      this.views = new Map();
      this.lists = new Map();
      this.pages = new Map();
      for (const listener of this.listeners) listener();
    });
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
  }

  /** Called after the visible catalogue changed (for `notifications/tools/list_changed`). */
  onChanged(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One page of the caller's tools; the cursor is the last id of the previous page. */
  page(caller: McpCaller, cursor: string | undefined): ToolPage {
    const { entries, start } = this.locate(caller, cursor);
    const slice = entries.slice(start, start + this.pageSize);
    const tools = slice.map((entry) => entry.view);
    if (start + this.pageSize < entries.length) return { tools, nextCursor: encodeCursor(slice[slice.length - 1].tool.id) };
    return { tools };
  }

  /**
   * The same page with its tools array as UTF-8 JSON, serialised once per catalogue change and
   * permission set (see ToolListSplice). Context endpoints filter per context and are not cached.
   */
  serializedPage(caller: McpCaller, cursor: string | undefined): { toolsJson: Buffer; nextCursor?: string } {
    if (caller.contextTools) {
      const page = this.page(caller, cursor);
      return { toolsJson: Buffer.from(JSON.stringify(page.tools)), nextCursor: page.nextCursor };
    }
    const { entries, start, key } = this.locate(caller, cursor);
    const cacheKey = `${key}\u0000${start}`;
    let cached = this.pages.get(cacheKey);
    if (!cached) {
      const slice = entries.slice(start, start + this.pageSize);
      const nextCursor = start + this.pageSize < entries.length ? encodeCursor(slice[slice.length - 1].tool.id) : undefined;
      cached = { toolsJson: Buffer.from(JSON.stringify(slice.map((entry) => entry.view))), nextCursor };
      if (this.pages.size >= MAX_CACHED_PAGES) this.pages.clear();
      this.pages.set(cacheKey, cached);
    }
    return cached.nextCursor === undefined ? { toolsJson: cached.toolsJson } : cached;
  }

  private locate(caller: McpCaller, cursor: string | undefined): { entries: Entry[]; start: number; key: string } {
    const key = caller.principal.permissions.join(' ');
    let entries = this.visible(key, caller.principal.permissions);
    if (caller.contextTools) {
      const inContext = caller.contextTools;
      entries = entries.filter((entry) => inContext.has(entry.tool.id));
    }
    let start = 0;
    if (cursor !== undefined) {
      const after = decodeCursor(cursor);
      start = firstAfter(entries, after);
    }
    return { entries, start, key };
  }

  /**
   * The tool `name` names, if this endpoint offers it to anyone: it exists, is available and (on
   * a context endpoint) belongs to the context. Whether this caller may run it is the pipeline's
   * decision (a disabled tool or a missing permission is a tool error, not an unknown tool).
   */
  find(caller: McpCaller, name: string): CatalogTool | undefined {
    const tool = this.catalog.find(name);
    if (!tool || !tool.available) return undefined;
    if (caller.contextTools && !caller.contextTools.has(tool.id)) return undefined;
    return tool;
  }

  private visible(key: string, permissions: readonly string[]): Entry[] {
    let list = this.lists.get(key);
    if (list) return list;
    const held = new Set(permissions);
    list = [];
    if (held.has(Permission.TOOLS_EXECUTE)) {
      const { tools } = this.catalog.list({ enabled: true, offset: 0, limit: Number.MAX_SAFE_INTEGER });
      for (const tool of tools) {
        if (tool.permissions.every((permission) => held.has(permission))) list.push({ tool, view: this.viewOf(tool) });
      }
    }
    if (this.lists.size >= MAX_CACHED_LISTS) this.lists.clear();
    this.lists.set(key, list);
    return list;
  }

  private viewOf(tool: CatalogTool): Tool {
    let view = this.views.get(tool.id);
    if (!view) {
      view = mcpToolOf(tool);
      this.views.set(tool.id, view);
    }
    return view;
  }
}

/**
 * The MCP shape of a catalogue tool: `name` is the tool id, the same one REST uses. A tool whose
 * provider gave its MCP fields (a federated tool) shows them as given: its own title,
 * description, output schema, annotations, icons and _meta, and none it did not send.
 */
export function mcpToolOf(tool: CatalogTool): Tool {
  const fields = tool.definition.mcp;
  if (fields) {
    const view: Tool = { name: tool.id, inputSchema: tool.inputSchema as Tool['inputSchema'] };
    if (fields.title !== undefined) view.title = fields.title;
    if (fields.description !== undefined) view.description = fields.description;
    if (fields.outputSchema !== undefined) view.outputSchema = fields.outputSchema as Tool['outputSchema'];
    if (fields.annotations !== undefined) view.annotations = fields.annotations as Tool['annotations'];
    if (fields.icons !== undefined) view.icons = fields.icons as Tool['icons'];
    if (fields._meta !== undefined) view._meta = fields._meta;
    return view;
  }
  const view: Tool = {
    name: tool.id,
    title: tool.definition.title ?? tool.name,
    description: tool.description,
    inputSchema: tool.inputSchema as Tool['inputSchema'],
  };
  if (hasObjectOutput(tool)) view.outputSchema = tool.outputSchema as Tool['outputSchema'];
  if (Object.keys(tool.annotations).length > 0) view.annotations = { ...tool.annotations };
  return view;
}

/** MCP output schemas describe `structuredContent`, which must be an object. */
export function hasObjectOutput(tool: CatalogTool): boolean {
  return tool.outputSchema?.type === 'object';
}

/** The output schema MCP agents are shown for the tool, if any. */
export function advertisedOutputSchema(tool: CatalogTool): unknown {
  if (tool.definition.mcp) return tool.definition.mcp.outputSchema;
  return hasObjectOutput(tool) ? tool.outputSchema : undefined;
}

function encodeCursor(lastId: string): string {
  return Buffer.from(lastId, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const id = typeof cursor === 'string' && cursor.length <= 256 ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!id || encodeCursor(id) !== cursor) throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Invalid cursor');
  return id;
}

/** Index of the first entry whose id sorts after `id` (entries are sorted by id). */
function firstAfter(entries: Entry[], id: string): number {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (entries[middle].tool.id <= id) low = middle + 1;
    else high = middle;
  }
  return low;
}
