import type { ToolCallContext, ToolDefinition } from '../provider/tool-provider';

/** One built-in tool: its definition and the work. Input has passed the input schema when `execute` runs. */
export interface BuiltinTool {
  readonly definition: ToolDefinition;
  execute(input: unknown, ctx: ToolCallContext): Promise<unknown>;
  /** Releases timers or monitors the tool holds; called when the provider shuts down. */
  close?(): void;
}
