import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit, Optional } from '@nestjs/common';
import Ajv, { ValidateFunction } from 'ajv';
import { APP_CONFIG, AppConfig } from '@app/core';
import { ToolError, ToolErrorCode, throwIfAborted } from '../provider/tool-error';
import type { ToolCallContext, ToolDefinition, ToolProvider } from '../provider/tool-provider';
import { ToolRuntimeStats } from '../runtime/tool-runtime-stats';
import type { BuiltinTool } from './builtin-tool';
import { EchoTool } from './echo.tool';
import { FilesystemTool } from './filesystem.tool';
import { HttpFetchTool, HttpTransport, nodeHttpTransport } from './http-fetch.tool';
import { TOOLS_HTTP_TRANSPORT } from './http-transport.token';
import { JSON_QUERY_DEFAULTS, JsonQueryTool } from './json-query.tool';
import { StatisticsTool } from './statistics.tool';
import { SystemMetricsTool } from './system-metrics.tool';

/**
 * The provider name of the tools that ship with the server. They never ask the calling agent
 * anything (REST callers have no relay): MCP runs them without the relay's machinery.
 */
export const BUILTIN_PROVIDER = 'builtin';

/**
 * The tools that ship with the server. Input is checked against each tool's schema here as
 * well as in the pipeline, so a tool never sees a shape it did not declare, whoever calls it.
 */
@Injectable()
export class BuiltinToolProvider implements ToolProvider, OnModuleInit, OnModuleDestroy {
  readonly name = BUILTIN_PROVIDER;
  private readonly logger = new Logger(BuiltinToolProvider.name);
  private readonly tools = new Map<string, { tool: BuiltinTool; validate?: ValidateFunction }>();
  /**
   * Compiles each tool's input check on the tool's first call, not at start (issue 18, P8: about 70 ms
   * of a cold start for code generation, on every start). The schemas are ours; builtin-tool.provider.spec
   * compiles every one of them with this strict instance's settings.
   */
  private ajv: Ajv | undefined;
  private readonly filesystem: FilesystemTool;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    @Optional() stats?: ToolRuntimeStats,
    /** Tests only: observe or stop outgoing connections of the fetch tool. */
    @Optional() @Inject(TOOLS_HTTP_TRANSPORT) transport?: HttpTransport,
  ) {
    const settings = config.tools;
    this.filesystem = new FilesystemTool({ root: settings.sandboxRoot, maxFileBytes: settings.fsMaxReadBytes });
    const tools: BuiltinTool[] = [
      this.filesystem,
      new JsonQueryTool({ ...JSON_QUERY_DEFAULTS, maxDocumentBytes: settings.httpMaxBytes, maxResultBytes: settings.httpMaxBytes }),
      new HttpFetchTool(
        {
          allowedHosts: settings.httpAllowedHosts,
          maxBytes: settings.httpMaxBytes,
          timeoutMs: settings.httpTimeoutMs,
          allowPrivate: settings.httpAllowPrivate ? 'always' : 'never',
        },
        transport ?? nodeHttpTransport,
      ),
      new StatisticsTool(),
      new SystemMetricsTool(stats ?? new ToolRuntimeStats()),
      new EchoTool(),
    ];
    for (const tool of tools) this.tools.set(tool.definition.id, { tool });
  }

  async onModuleInit(): Promise<void> {
    await this.filesystem.init();
    this.logger.log(`Built-in tools ready: ${[...this.tools.keys()].join(', ')}`);
  }

  onModuleDestroy(): void {
    for (const { tool } of this.tools.values()) tool.close?.();
  }

  async listTools(): Promise<ToolDefinition[]> {
    // Copies: callers (the catalogue, admins' overrides) must not change the definitions in place.
    return [...this.tools.values()].map(({ tool }) => structuredClone(tool.definition));
  }

  async execute(toolId: string, input: unknown, ctx: ToolCallContext): Promise<unknown> {
    const entry = this.tools.get(toolId);
    if (!entry) throw new ToolError(ToolErrorCode.NOT_FOUND, `no built-in tool ${toolId}`);
    throwIfAborted(ctx.signal);
    const validate = (entry.validate ??= (this.ajv ??= new Ajv({ allErrors: true, strict: true })).compile(
      entry.tool.definition.inputSchema,
    ));
    if (!validate(input)) {
      // `if` errors only repeat that a `then` branch failed; the branch's own errors name the field.
      const details = (validate.errors ?? [])
        .filter((error) => error.keyword !== 'if')
        .map((error) => {
          // Name the offending field itself, also for a missing or an unexpected property.
          const { missingProperty, additionalProperty } = error.params as { missingProperty?: string; additionalProperty?: string };
          const property = missingProperty ?? additionalProperty;
          return {
            field: property ? `${error.instancePath}/${property}` : error.instancePath || '/',
            message: error.message ?? 'is invalid',
          };
        });
      throw new ToolError(ToolErrorCode.INVALID_INPUT, "the input does not match the tool's input schema", details);
    }
    return entry.tool.execute(input, ctx);
  }
}
