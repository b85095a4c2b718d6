import { Injectable, Module } from '@nestjs/common';
import { setTimeout as delay } from 'node:timers/promises';
import { abortedError, TOOL_PROVIDERS, ToolCallContext, ToolDefinition, ToolError, ToolProvider } from '@app/tools';

export interface SleepCall {
  ms: number;
  /** The signal fired while the tool waited. */
  abortObserved: boolean;
  abortReason?: string;
  /** The wait ran to its end (it must not, once aborted). */
  finished: boolean;
}

const object = (properties: Record<string, unknown>, required: string[] = []) => ({
  type: 'object',
  additionalProperties: false,
  required,
  properties,
});

const definition = (id: string, inputSchema: Record<string, unknown>, outputSchema: Record<string, unknown>): ToolDefinition => ({
  id,
  name: id.replace(/^tool_/, ''),
  description: `Test tool ${id}`,
  version: '1.0.0',
  category: 'system',
  inputSchema,
  outputSchema,
  permissions: ['tools:execute'],
  rateLimit: { requests: 1000, window: '1m' },
});

/**
 * Test-only tools, joined through TOOL_PROVIDERS like any other source:
 * - tool_sleep waits `ms`, honouring the abort signal, and records what it saw;
 * - tool_stubborn ignores the signal (the pipeline must still answer at the deadline);
 * - tool_crash throws an unexpected error carrying internals that must not leak;
 * - tool_bad_output returns what its output schema forbids.
 */
@Injectable()
export class TestToolProvider implements ToolProvider {
  readonly name = 'test';
  readonly sleeps: SleepCall[] = [];
  /** tool_stubborn's calls: whether each has run to its end yet. */
  readonly stubborn: Array<{ ms: number; finished: boolean }> = [];

  async listTools(): Promise<ToolDefinition[]> {
    return [
      definition('tool_sleep', object({ ms: { type: 'integer', minimum: 0 } }, ['ms']), object({ slept: { type: 'integer' } }, ['slept'])),
      definition('tool_stubborn', object({ ms: { type: 'integer', minimum: 0 } }, ['ms']), object({ done: { type: 'boolean' } })),
      definition('tool_crash', object({}), object({})),
      definition('tool_bad_output', object({}), object({ count: { type: 'integer' } }, ['count'])),
    ];
  }

  async execute(toolId: string, input: unknown, ctx: ToolCallContext): Promise<unknown> {
    const { ms = 0 } = input as { ms?: number };
    switch (toolId) {
      case 'tool_sleep': {
        const call: SleepCall = { ms, abortObserved: false, finished: false };
        this.sleeps.push(call);
        try {
          await delay(ms, undefined, { signal: ctx.signal });
        } catch {
          call.abortObserved = ctx.signal.aborted;
          call.abortReason = ctx.signal.reason instanceof ToolError ? String(ctx.signal.reason.code) : String(ctx.signal.reason);
          throw abortedError(ctx.signal);
        }
        call.finished = true;
        return { slept: ms };
      }
      case 'tool_stubborn': {
        const call = { ms, finished: false };
        this.stubborn.push(call);
        // Unref'd: the wait must not keep the test process alive after the suite.
        await delay(ms, undefined, { ref: false });
        call.finished = true;
        return { done: true };
      }
      case 'tool_crash':
        throw new Error('connect ECONNREFUSED 10.1.2.3:5432 at /srv/internal/secret.js:42');
      case 'tool_bad_output':
        return { count: 'many' };
      default:
        throw new ToolError('NOT_FOUND', `no test tool ${toolId}`);
    }
  }
}

@Module({
  providers: [TestToolProvider, { provide: TOOL_PROVIDERS, useExisting: TestToolProvider }],
  exports: [TestToolProvider],
})
export class TestToolsModule {}
