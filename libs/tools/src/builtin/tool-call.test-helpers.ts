import { ToolError } from '../provider/tool-error';
import type { ToolCallContext } from '../provider/tool-provider';

/** Test support for the built-in tool specs (kept out of the build by tsconfig.build.json). */

/** A call context for a plain caller; pass permissions or a signal to vary it. */
export function ctx(signal: AbortSignal = new AbortController().signal, permissions: string[] = ['tools:execute']): ToolCallContext {
  return { signal, userId: 'usr_test', permissions };
}

/** The ToolError a call fails with; fails the test if it succeeds or throws anything else. */
export async function failure(promise: Promise<unknown>): Promise<ToolError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ToolError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}
