import { Injectable, Logger } from '@nestjs/common';
import { Clock, Correlation } from '@app/core';
import type { ClientRequestRelay } from '../provider/client-request-relay';
import { abortedError, ToolError, ToolErrorCode } from '../provider/tool-error';
import { isToolResult, textOf } from '../provider/tool-result';
import { ToolRuntimeStats } from '../runtime/tool-runtime-stats';
import type { CatalogTool } from '../catalog/catalog-tool';
import { ToolProviderRegistry } from '../catalog/tool-provider.registry';
import { toPlainJson } from '../common/stored-json';
import { ExecutionFailureCode } from '../tool-error-codes';
import type { ExecutionError } from './tool-execution';
import { ToolSchemaValidator } from './tool-schema-validator';

export interface RunCaller {
  userId: string;
  permissions: string[];
  /** See ToolCallContext.idpToken (absent for queued calls: their caller is not on the line). */
  idpToken?: string;
}

export interface RunOptions {
  timeoutMs: number;
  /** Cancels the call from outside (e.g. the process is stopping). */
  signal?: AbortSignal;
  reportProgress?: (progress: number, total?: number, message?: string) => void;
  relay?: ClientRequestRelay;
  /** The request's log correlation: every line logged for the call carries it (and so does the provider's). */
  correlation?: Correlation;
}

export interface RunOutcome {
  status: 'completed' | 'failed';
  /** Plain JSON that matched the output schema (null when failed, except a ToolResult with isError). */
  result: unknown;
  error: ExecutionError | null;
  startedAt: Date;
  finishedAt: Date;
  durationMs: number;
  /** True when `options.signal` (not the timeout) ended the call. */
  cancelled: boolean;
}

const MAX_MESSAGE_LENGTH = 1024;

/**
 * Runs one call: the provider's `execute` under a timeout and an AbortController whose signal
 * the tool must honour, then the output normalised to plain JSON and checked against the output
 * schema. Never throws: every way a call can end is an outcome.
 */
@Injectable()
export class ToolRunner {
  private readonly logger = new Logger(ToolRunner.name);

  constructor(
    private readonly registry: ToolProviderRegistry,
    private readonly validator: ToolSchemaValidator,
    private readonly stats: ToolRuntimeStats,
    private readonly clock: Clock,
  ) {}

  async run(tool: CatalogTool, input: unknown, caller: RunCaller, options: RunOptions): Promise<RunOutcome> {
    const startedAt = this.clock.now();
    const started = performance.now();
    const end = (status: RunOutcome['status'], result: unknown, error: ExecutionError | null, cancelled = false): RunOutcome => {
      // At debug level each failed call says how it ended, with the request's correlation (never its input or output).
      if (error) this.logger.debug({ ...options.correlation, tool: tool.id, code: error.code, cancelled }, 'Tool call failed');
      return {
        status,
        result,
        error,
        startedAt,
        finishedAt: new Date(startedAt.getTime() + (performance.now() - started)),
        durationMs: Math.round((performance.now() - started) * 1000) / 1000,
        cancelled,
      };
    };

    const provider = this.registry.get(tool.provider);
    if (!provider) {
      return end('failed', null, { code: ExecutionFailureCode.TOOL_UNAVAILABLE, message: 'The tool is not available on this server' });
    }

    const controller = new AbortController();
    const finished = this.stats.executionStarted();
    const timer = setTimeout(() => {
      controller.abort(new ToolError(ToolErrorCode.TIMEOUT, `The tool did not finish within ${options.timeoutMs} ms and was stopped`));
    }, options.timeoutMs);
    const cancel = () => controller.abort(new ToolError(ToolErrorCode.ABORTED, 'The call was cancelled before it finished'));
    if (options.signal?.aborted) cancel();
    options.signal?.addEventListener('abort', cancel, { once: true });
    const aborted = rejectOnAbort(controller.signal);

    let work: Promise<unknown> | undefined;
    try {
      work = Promise.resolve().then(() =>
        provider.execute(tool.id, input, {
          signal: controller.signal,
          userId: caller.userId,
          permissions: caller.permissions,
          ...(caller.idpToken ? { idpToken: caller.idpToken } : {}),
          reportProgress: options.reportProgress,
          relay: options.relay,
          correlation: options.correlation,
        }),
      );
      // The race returns at the deadline even when a tool ignores its signal.
      const raw = await Promise.race([work, aborted.promise]);
      return this.checkOutput(tool, raw, end, options.correlation);
    } catch (error) {
      const cancelled = controller.signal.aborted && options.signal?.aborted === true;
      return end('failed', null, this.describeFailure(tool, error, options.correlation), cancelled);
    } finally {
      clearTimeout(timer);
      aborted.dispose();
      options.signal?.removeEventListener('abort', cancel);
      finished();
      if (controller.signal.aborted && work) this.watchStraggler(tool, work, options.correlation);
    }
  }

  private checkOutput(
    tool: CatalogTool,
    raw: unknown,
    end: (status: RunOutcome['status'], result: unknown, error: ExecutionError | null) => RunOutcome,
    correlation: Correlation | undefined,
  ): RunOutcome {
    let output: unknown;
    try {
      output = toPlainJson(raw);
    } catch (error) {
      this.logger.error({ ...correlation, err: error, tool: tool.id }, 'Tool returned a value that is not JSON');
      return end('failed', null, { code: ExecutionFailureCode.INVALID_OUTPUT, message: 'The tool returned output that is not JSON' });
    }
    const mismatches = this.validator.checkOutput(tool, output);
    if (mismatches) {
      this.logger.warn({ ...correlation, tool: tool.id, mismatches }, 'Tool output does not match its output schema');
      return end('failed', null, {
        code: ExecutionFailureCode.INVALID_OUTPUT,
        message: 'The tool returned output that does not match its output schema',
      });
    }
    if (tool.definition.resultFormat === 'content' && isToolResult(output) && output.isError === true) {
      // The tool's own error result: kept whole (REST shows it as `result`, MCP relays it as sent).
      const text = textOf(output);
      return end('failed', output, {
        code: ToolErrorCode.UPSTREAM_ERROR,
        message: text ? text.slice(0, MAX_MESSAGE_LENGTH) : 'The tool reported an error',
      });
    }
    return end('completed', output, null);
  }

  private describeFailure(tool: CatalogTool, error: unknown, correlation: Correlation | undefined): ExecutionError {
    if (error instanceof ToolError) {
      const described: ExecutionError = { code: String(error.code), message: String(error.message).slice(0, MAX_MESSAGE_LENGTH) };
      if (Array.isArray(error.details) && error.details.length > 0) {
        described.details = error.details
          .slice(0, 20)
          .map((d) => ({ field: String(d.field), message: String(d.message).slice(0, MAX_MESSAGE_LENGTH) }));
      }
      if (error.rpc) described.rpc = error.rpc;
      return described;
    }
    // Not an expected failure: the details (and stack) go to the log, never to the caller.
    this.logger.error({ ...correlation, err: error, tool: tool.id }, 'Tool failed unexpectedly');
    return { code: ExecutionFailureCode.TOOL_FAILED, message: 'The tool failed unexpectedly' };
  }

  /** A tool still running after its signal fired is a bug in that tool: say so when it finally ends. */
  private watchStraggler(tool: CatalogTool, work: Promise<unknown>, correlation: Correlation | undefined): void {
    const abortedAt = performance.now();
    let settled = false;
    work.then(
      () => (settled = true),
      () => (settled = true),
    );
    setImmediate(() => {
      if (settled) return;
      void work
        .catch(() => undefined)
        .then(() => {
          this.logger.warn(
            { ...correlation, tool: tool.id, lateByMs: Math.round(performance.now() - abortedAt) },
            'Tool kept working after its call was aborted',
          );
        });
    });
  }
}

/** A promise that rejects with the signal's reason when it fires; dispose() stops listening. */
function rejectOnAbort(signal: AbortSignal): { promise: Promise<never>; dispose: () => void } {
  let listener: (() => void) | undefined;
  const promise = new Promise<never>((_, reject) => {
    listener = () => reject(abortedError(signal));
    if (signal.aborted) listener();
    else signal.addEventListener('abort', listener, { once: true });
  });
  // The race may already be decided; this rejection must never be reported as unhandled.
  promise.catch(() => undefined);
  return { promise, dispose: () => listener && signal.removeEventListener('abort', listener) };
}
