import { setTimeout as delay } from 'node:timers/promises';
import { abortedError, throwIfAborted } from '../provider/tool-error';
import type { ToolCallContext, ToolDefinition } from '../provider/tool-provider';
import type { BuiltinTool } from './builtin-tool';

/** Longest optional delay: long enough to exercise any configured timeout. */
export const ECHO_MAX_DELAY_MS = 3_600_000;

/**
 * data — returns its message. The trivial tool benchmarks and tests call; `delayMs` makes it a
 * slow tool whose wait really ends when the call is aborted.
 */
export class EchoTool implements BuiltinTool {
  readonly definition: ToolDefinition = {
    id: 'tool_echo',
    name: 'echo',
    title: 'Echo',
    description:
      'Returns the given message unchanged, optionally after waiting delayMs milliseconds (the wait stops when the call is cancelled).',
    version: '1.0.0',
    category: 'data',
    inputSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['message'],
      properties: {
        message: { type: 'string', maxLength: 10_000 },
        delayMs: { type: 'integer', minimum: 0, maximum: ECHO_MAX_DELAY_MS, default: 0 },
      },
    },
    outputSchema: {
      type: 'object',
      additionalProperties: false,
      required: ['message'],
      properties: { message: { type: 'string' } },
    },
    permissions: ['tools:execute'],
    rateLimit: { requests: 600, window: '1m' },
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    enabledByDefault: true,
  };

  async execute(raw: unknown, ctx: ToolCallContext): Promise<unknown> {
    const input = raw as { message: string; delayMs?: number };
    throwIfAborted(ctx.signal);
    if (input.delayMs) {
      try {
        await delay(input.delayMs, undefined, { signal: ctx.signal });
      } catch (error) {
        if (ctx.signal.aborted) throw abortedError(ctx.signal);
        throw error;
      }
    }
    return { message: input.message };
  }
}
