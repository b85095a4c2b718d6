import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { compile } from '@jmespath-community/jmespath';
import { ToolError, ToolErrorCode, abortedError, throwIfAborted } from '../provider/tool-error';
import type { ToolCallContext, ToolDefinition } from '../provider/tool-provider';
import type { BuiltinTool } from './builtin-tool';
import { ConcurrencyLimit } from './concurrency-limit';
import { ANY_JSON_VALUE } from './schema-helpers';

export interface JsonQueryOptions {
  /** Largest document, as JSON text, in bytes. */
  maxDocumentBytes: number;
  /** Largest result, as JSON text, in bytes. */
  maxResultBytes: number;
  /** Wall-clock cap of one evaluation, below whatever timeout the pipeline sets. */
  timeoutMs: number;
  /** Heap cap of the evaluating worker. */
  maxHeapMb: number;
}

export const JSON_QUERY_DEFAULTS: JsonQueryOptions = {
  maxDocumentBytes: 1024 * 1024,
  maxResultBytes: 1024 * 1024,
  timeoutMs: 10_000,
  maxHeapMb: 128,
};

const MAX_EXPRESSION_LENGTH = 4096;
const MAX_DEPTH = 128;

/**
 * Evaluation runs in a short-lived worker thread with a heap cap: a JMESPath expression is
 * synchronous and can build results exponentially larger than its input (nested multi-selects,
 * pad functions), so the only way to bound its time and memory — and to honour an abort — is a
 * thread we can terminate. Plain CommonJS so it runs the same from ts sources and from dist.
 */
const WORKER_SOURCE = `
'use strict';
(function run() {
const { parentPort, workerData } = require('node:worker_threads');
const { search } = require(workerData.modulePath);
let document;
try {
  document = JSON.parse(workerData.json);
} catch (error) {
  parentPort.postMessage({ ok: false, code: 'INVALID_INPUT', message: 'json is not valid JSON: ' + error.message });
  return;
}
let result;
try {
  result = search(document, workerData.expression);
} catch (error) {
  parentPort.postMessage({ ok: false, code: 'INVALID_INPUT', message: 'the expression failed: ' + (error && error.message) });
  return;
}
const text = JSON.stringify(result === undefined ? null : result);
if (Buffer.byteLength(text, 'utf8') > workerData.maxResultBytes) {
  parentPort.postMessage({ ok: false, code: 'TOO_LARGE', message: 'the result is larger than ' + workerData.maxResultBytes + ' bytes' });
} else {
  parentPort.postMessage({ ok: true, text });
}
})();
`;

type WorkerReply = { ok: true; text: string } | { ok: false; code: string; message: string };

/** Throws unless `value` nests at most `MAX_DEPTH` levels; checked iteratively so depth cannot overflow the stack. */
function assertDepth(value: unknown): void {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (depth >= MAX_DEPTH) throw new ToolError(ToolErrorCode.TOO_LARGE, `the document nests deeper than ${MAX_DEPTH} levels`);
    for (const child of Object.values(current)) stack.push([child, depth + 1]);
  }
}

/** data — a JMESPath query over a JSON document given in the input. */
export class JsonQueryTool implements BuiltinTool {
  readonly definition: ToolDefinition;
  private readonly modulePath = require.resolve('@jmespath-community/jmespath');
  private readonly workers = new ConcurrencyLimit(Math.max(2, availableParallelism()));

  constructor(private readonly options: JsonQueryOptions = JSON_QUERY_DEFAULTS) {
    this.definition = {
      id: 'tool_json_query',
      name: 'json_query',
      title: 'JSON query (JMESPath)',
      description:
        'Evaluates a JMESPath expression (JMESPath Community edition: projections, filters, functions, let expressions) ' +
        `over a JSON document given either as a value (document) or as JSON text (json), at most ${options.maxDocumentBytes} bytes.`,
      version: '1.0.0',
      category: 'data',
      inputSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['expression'],
        properties: {
          expression: {
            type: 'string',
            minLength: 1,
            maxLength: MAX_EXPRESSION_LENGTH,
            description: 'A JMESPath expression, e.g. "people[?age > `30`].name"',
          },
          document: { ...ANY_JSON_VALUE, description: 'The JSON document to query (any JSON value)' },
          json: { type: 'string', maxLength: options.maxDocumentBytes, description: 'The document as JSON text, instead of document' },
        },
        // Exactly one of the two; the fields are named (typed) in each branch for ajv's strictRequired.
        oneOf: [
          { required: ['document'], properties: { document: ANY_JSON_VALUE } },
          { required: ['json'], properties: { json: { type: 'string' } } },
        ],
      },
      outputSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['result'],
        properties: { result: { ...ANY_JSON_VALUE, description: 'The value the expression selects; null when it selects nothing' } },
      },
      permissions: ['tools:execute'],
      rateLimit: { requests: 120, window: '1m' },
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
      enabledByDefault: true,
    };
  }

  async execute(raw: unknown, ctx: ToolCallContext): Promise<unknown> {
    const input = raw as { expression: string; document?: unknown; json?: string };
    throwIfAborted(ctx.signal);
    try {
      compile(input.expression);
    } catch (error) {
      throw new ToolError(ToolErrorCode.INVALID_INPUT, `the expression is not valid JMESPath: ${(error as Error).message}`, [
        { field: '/expression', message: (error as Error).message },
      ]);
    }

    let json: string;
    if (input.json !== undefined) {
      json = input.json;
    } else {
      assertDepth(input.document);
      json = JSON.stringify(input.document === undefined ? null : input.document);
    }
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > this.options.maxDocumentBytes) {
      throw new ToolError(ToolErrorCode.TOO_LARGE, `the document is ${bytes} bytes; the limit is ${this.options.maxDocumentBytes}`);
    }

    const release = await this.workers.acquire(ctx.signal);
    try {
      const text = await this.evaluate(input.expression, json, ctx.signal);
      return { result: JSON.parse(text) };
    } finally {
      release();
    }
  }

  private evaluate(expression: string, json: string, signal: AbortSignal): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { modulePath: this.modulePath, expression, json, maxResultBytes: this.options.maxResultBytes },
        resourceLimits: { maxOldGenerationSizeMb: this.options.maxHeapMb, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
      });
      let settled = false;
      const finish = (error: ToolError | Error | undefined, text?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        void worker.terminate();
        if (error) reject(error);
        else resolve(text!);
      };
      const onAbort = () => finish(abortedError(signal));
      const timer = setTimeout(
        () => finish(new ToolError(ToolErrorCode.TIMEOUT, `the query ran longer than ${this.options.timeoutMs} ms`)),
        this.options.timeoutMs,
      );
      signal.addEventListener('abort', onAbort, { once: true });
      worker.on('message', (reply: WorkerReply) => {
        if (reply.ok) finish(undefined, reply.text);
        else finish(new ToolError(reply.code, reply.message));
      });
      worker.on('error', (error: Error & { code?: string }) => {
        if (error.code === 'ERR_WORKER_OUT_OF_MEMORY' || error instanceof RangeError) {
          finish(new ToolError(ToolErrorCode.TOO_LARGE, 'the query needs more memory or depth than allowed'));
        } else {
          finish(error);
        }
      });
      worker.on('exit', () => finish(new Error('the query worker stopped without an answer')));
    });
  }
}
