import { ProtocolError } from '@modelcontextprotocol/server';
import type { CatalogTool, ToolDefinition } from '@app/tools';
import { failedResult } from '../errors/mcp-errors';
import { completedResult } from './mcp-call-result';

function toolOf(definition: Partial<ToolDefinition>, outputSchema: Record<string, unknown> = { type: 'object' }): CatalogTool {
  return { id: 't', name: 't', outputSchema, definition: { ...definition } as ToolDefinition } as CatalogTool;
}

const federated = toolOf({ resultFormat: 'content', mcp: {} });
const builtin = toolOf({});

describe('MCP call results', () => {
  it('relay a content-format result as it came: blocks, structuredContent, _meta, nothing added', () => {
    const result = {
      content: [
        { type: 'image', data: 'AAAA', mimeType: 'image/png' },
        { type: 'resource', resource: { uri: 'test://a', text: 'x' } },
      ],
      _meta: { 'example.com/k': 1 },
    };
    expect(completedResult(federated, result)).toEqual(result);
    expect(completedResult(federated, { content: [], structuredContent: { a: 1 } })).toEqual({ content: [], structuredContent: { a: 1 } });
  });

  it('keep the built-in rendering: JSON text, and structuredContent for an object output', () => {
    expect(completedResult(builtin, { message: 'hi' })).toEqual({
      content: [{ type: 'text', text: '{"message":"hi"}' }],
      structuredContent: { message: 'hi' },
    });
  });

  it('relay an upstream isError result unchanged, and throw an upstream JSON-RPC error as that error', () => {
    const failed = { content: [{ type: 'text', text: 'no' }], isError: true, _meta: { why: 'x' } };
    expect(failedResult(federated, { code: 'UPSTREAM_ERROR', message: 'no' }, failed)).toEqual(failed);
    let thrown: unknown;
    try {
      failedResult(federated, {
        code: 'UPSTREAM_ERROR',
        message: 'm',
        rpc: { code: -32021, message: 'Missing capability', data: { need: 'sampling' } },
      });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ProtocolError);
    expect(thrown).toMatchObject({ code: -32021, message: 'Missing capability', data: { need: 'sampling' } });
  });

  it("say so when the failure is the gateway's own, with structuredContent.error only where an output schema is advertised", () => {
    expect(failedResult(federated, { code: 'TIMEOUT', message: 'too slow' })).toEqual({
      isError: true,
      content: [{ type: 'text', text: 'TIMEOUT: too slow' }],
    });
    const withSchema = toolOf({ resultFormat: 'content', mcp: { outputSchema: { type: 'object' } } });
    expect(failedResult(withSchema, { code: 'TIMEOUT', message: 'too slow' }).structuredContent).toEqual({
      error: { code: 'TIMEOUT', message: 'too slow' },
    });
  });
});
