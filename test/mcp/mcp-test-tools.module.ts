import { Injectable, Module } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import { abortedError, TOOL_PROVIDERS, ToolCallContext, ToolDefinition, ToolProvider } from '@app/tools';

/**
 * A test-only tool for the MCP suites: tool_progress counts to `steps`, reporting progress after
 * each step and waiting `stepMs` between them; it honours the abort signal and records whether it
 * saw one (so a cancelled MCP request can be shown to stop the work).
 */
@Injectable()
export class McpTestToolProvider implements ToolProvider {
  readonly name = 'mcp-test';
  readonly aborted: string[] = [];

  async listTools(): Promise<ToolDefinition[]> {
    return [
      {
        id: 'tool_progress',
        name: 'progress',
        title: 'Progress',
        description: 'Counts to steps, reporting progress',
        version: '1.0.0',
        category: 'system',
        inputSchema: {
          type: 'object',
          additionalProperties: false,
          required: ['steps'],
          properties: { steps: { type: 'integer', minimum: 1, maximum: 100 }, stepMs: { type: 'integer', minimum: 0, maximum: 10_000 } },
        },
        outputSchema: { type: 'object', required: ['counted'], properties: { counted: { type: 'integer' } } },
        permissions: ['tools:execute'],
        rateLimit: { requests: 1000, window: '1m' },
      },
    ];
  }

  async execute(_toolId: string, input: unknown, ctx: ToolCallContext): Promise<unknown> {
    const { steps, stepMs = 20 } = input as { steps: number; stepMs?: number };
    for (let step = 1; step <= steps; step++) {
      try {
        await delay(stepMs, undefined, { signal: ctx.signal });
      } catch {
        this.aborted.push(String((ctx.signal.reason as Error)?.message ?? ctx.signal.reason));
        throw abortedError(ctx.signal);
      }
      ctx.reportProgress?.(step, steps, `step ${step}`);
    }
    return { counted: steps };
  }
}

@Module({
  providers: [McpTestToolProvider, { provide: TOOL_PROVIDERS, useExisting: McpTestToolProvider }],
  exports: [McpTestToolProvider],
})
export class McpTestToolsModule {}
