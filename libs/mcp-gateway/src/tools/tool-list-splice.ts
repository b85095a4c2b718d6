import { randomBytes } from 'node:crypto';
import type { Tool } from '@modelcontextprotocol/server';

/**
 * Lets a stateless `tools/list` answer carry a tools array serialised once per catalogue change
 * instead of once per request. The SDK still handles the whole exchange (envelope checks, the
 * result's encoding, the response); our handler hands it a one-tool placeholder array, and the
 * endpoint puts the cached JSON where the placeholder's JSON is in the answer. With 1,000 tools
 * the per-request JSON.stringify, UTF-8 encode, decode and re-encode of ~700 KB were most of the
 * endpoint's CPU (45 answers/s where a static route serves 500).
 *
 * The SDK's 2026-07-28 encoding only removes a tool's `execution` field, which our tool views never
 * have, so the spliced answer is byte for byte what the SDK would have written. The placeholder
 * name carries a per-process random nonce that no client can know or echo.
 */
export class ToolListSplice {
  private json: Buffer | undefined;

  /** The tools array to return from the handler; `json` (UTF-8) replaces it in the answer. */
  hold(json: Buffer): Tool[] {
    this.json = json;
    return [PLACEHOLDER];
  }

  get held(): boolean {
    return this.json !== undefined;
  }

  /**
   * The answer with the held JSON in place of the placeholder (which must be there, once), as
   * bytes: one copy of the cached buffer, where a string would be measured and encoded again.
   */
  apply(answer: string): Buffer | string {
    if (this.json === undefined) return answer;
    const at = answer.indexOf(PLACEHOLDER_JSON);
    if (at < 0 || answer.indexOf(PLACEHOLDER_JSON, at + 1) >= 0)
      throw new Error('tools/list answer does not carry the placeholder exactly once');
    return Buffer.concat([Buffer.from(answer.slice(0, at)), this.json, Buffer.from(answer.slice(at + PLACEHOLDER_JSON.length))]);
  }
}

const PLACEHOLDER: Tool = { name: `smcp.placeholder.${randomBytes(16).toString('hex')}`, inputSchema: { type: 'object' } };
const PLACEHOLDER_JSON = JSON.stringify([PLACEHOLDER]);

/** Where the endpoint hands a request's splice to the server it builds (in `authInfo.extra`). */
export const TOOL_LIST_SPLICE_KEY = 'toolListSplice';
