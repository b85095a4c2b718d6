import { Client } from '@modelcontextprotocol/client';
import type { Request, RequestMethod, RequestOptions, ResultTypeMap, StandardSchemaV1 } from '@modelcontextprotocol/client';

/** The requests of agents the gateway relays to an upstream and whose results it passes on. */
const RELAYED_METHODS = new Set(['tools/call', 'prompts/get', 'resources/read']);

/**
 * The result schema of a relayed request on a 2026-07-28 connection: the result as the SDK
 * decoded it. On that era the SDK's codec has already checked the raw result against the wire
 * schema of the method (the full zod schema of CallToolResult, GetPromptResult or
 * ReadResourceResult, before it takes `resultType` off); its default result schema would check
 * it a second time and rebuild it (dropping fields it does not know inside content blocks and
 * messages). This one takes it as decoded.
 */
const DECODED_ON_THE_WIRE: StandardSchemaV1<unknown, unknown> = {
  '~standard': { version: 1, vendor: 'secure-mcp-gateway', validate: (value: unknown) => ({ value }) },
};

/**
 * The SDK client the gateway speaks to upstreams with. A relayed request (tools/call, prompts/get,
 * resources/read) is answered as the upstream sent it, once checked: the SDK's own result schema
 * would hand back a copy rebuilt by zod, without the fields it does not know inside content blocks
 * and messages, and what an upstream sends must reach the agent intact. On a 2026-07-28 connection
 * the SDK's codec has already checked the result against the method's wire schema (issue 18: a
 * second check and the SDK's probe of it cost about 6% of the gateway's CPU per hop, see
 * DECODED_ON_THE_WIRE); on the 2025 era the same check as the SDK's applies (the era's wire
 * schema, refusing what fails it) and the result is kept as it arrived. Every other request gets
 * the SDK's own result schema. callTool's output-schema check of `structuredContent` and its header
 * mirroring are the SDK's, unchanged.
 */
export class RelayClient extends Client {
  override request<M extends RequestMethod>(
    request: { method: M; params?: Record<string, unknown> },
    options?: RequestOptions,
  ): Promise<ResultTypeMap[M]>;
  override request<T extends StandardSchemaV1>(
    request: Request,
    resultSchema: T,
    options?: RequestOptions,
  ): Promise<StandardSchemaV1.InferOutput<T>>;
  override request(request: Request, schemaOrOptions?: unknown, options?: RequestOptions): Promise<unknown> {
    if (!isSchema(schemaOrOptions) && RELAYED_METHODS.has(request.method)) {
      const schema = this.getProtocolEra() === 'modern' ? DECODED_ON_THE_WIRE : this.checkedAsSent(request.method);
      return super.request(request, schema, schemaOrOptions as RequestOptions | undefined);
    }
    return super.request(request, schemaOrOptions as StandardSchemaV1, options);
  }

  /** The era's wire-schema check of `method`'s result, as the SDK's, whose answer is the result as it arrived. */
  private checkedAsSent(method: string): StandardSchemaV1<unknown, unknown> {
    return {
      '~standard': {
        version: 1,
        vendor: 'secure-mcp-gateway',
        validate: (value: unknown) => {
          const outcome = this._wireCodec().validateResult(method, value);
          if (outcome.ok) return { value };
          return { issues: [{ message: outcome.reason === 'invalid' ? outcome.message : `not-in-era: ${method}` }] };
        },
      },
    };
  }
}

function isSchema(value: unknown): value is StandardSchemaV1 {
  return typeof value === 'object' && value !== null && '~standard' in value;
}
