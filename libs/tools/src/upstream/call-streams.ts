import type { FetchLike } from '@modelcontextprotocol/client';

/**
 * Which agent request an upstream's server→client request or log message belongs to, over
 * Streamable HTTP: the upstream sends those on the response stream of the request they concern,
 * but the SDK hands them to the client's handlers without saying which stream they came on. So
 * the gateway marks each agent request it forwards with a token in the request header
 * CALL_MARK_HEADER (the SDK's per-request `headers` option); the transport's fetch
 * (callStreamFetch) takes the header out before the request leaves (the upstream never sees it)
 * and writes the mark into `_meta[CALL_MARK]` of every request and notification that comes back
 * on that request's event stream. Handlers read it with takeCallMark. (A header rather than a
 * field of the body: the body then leaves as the SDK wrote it, without being parsed and written
 * again for every call.)
 */
export const CALL_MARK = 'io.secure-mcp-gateway/call';

/** The request header that carries a call's mark from the provider to callStreamFetch (never sent upstream). */
export const CALL_MARK_HEADER = 'x-secure-mcp-gateway-call';

/** The mark a message arrived with (and takes it out of `params`), or undefined. */
export function takeCallMark(params: { _meta?: Record<string, unknown> } | undefined): string | undefined {
  if (!params?._meta) return undefined;
  const meta = params._meta;
  const mark = meta[CALL_MARK];
  if (typeof mark !== 'string') return undefined;
  delete meta[CALL_MARK];
  if (Object.keys(meta).length === 0) delete params._meta;
  return mark;
}

/** A fetch for the upstream's Streamable HTTP transport that carries call marks across (see above). */
export function callStreamFetch(inner: FetchLike): FetchLike {
  return async (url, init) => {
    const taken = takeMarkHeader(init);
    if (!taken) return inner(url, init);
    const { mark } = taken;
    const response = await inner(url, taken.init);
    const type = response.headers.get('content-type') ?? '';
    if (!type.toLowerCase().startsWith('text/event-stream') || !response.body) return response;
    return new Response(response.body.pipeThrough(markEvents(mark)), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

/** The mark header of a request, and the request without it; undefined when it carries none. */
function takeMarkHeader(init: RequestInit | undefined): { mark: string; init: RequestInit } | undefined {
  const headers = init?.headers;
  if (!init || !headers) return undefined;
  if (headers instanceof Headers) {
    const mark = headers.get(CALL_MARK_HEADER);
    if (mark === null) return undefined;
    // The SDK's transport builds a fresh Headers object for each request: taken out in place.
    headers.delete(CALL_MARK_HEADER);
    return { mark, init };
  }
  const copy = new Headers(headers);
  const mark = copy.get(CALL_MARK_HEADER);
  if (mark === null) return undefined;
  copy.delete(CALL_MARK_HEADER);
  return { mark, init: { ...init, headers: copy } };
}

/** Writes `mark` into the `_meta` of every JSON-RPC request and notification event of an SSE stream; the rest passes as it came. */
function markEvents(mark: string): TransformStream<Uint8Array, Uint8Array> {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let buffer = '';
  const flushEvents = (controller: TransformStreamDefaultController<Uint8Array>, final: boolean) => {
    for (;;) {
      const end = /\r?\n\r?\n/.exec(buffer);
      if (!end) break;
      const event = buffer.slice(0, end.index);
      buffer = buffer.slice(end.index + end[0].length);
      controller.enqueue(encoder.encode(`${markEvent(event, mark)}\n\n`));
    }
    if (final && buffer.length > 0) {
      controller.enqueue(encoder.encode(buffer));
      buffer = '';
    }
  };
  return new TransformStream({
    transform(chunk, controller) {
      buffer += decoder.decode(chunk, { stream: true });
      flushEvents(controller, false);
    },
    flush(controller) {
      buffer += decoder.decode();
      flushEvents(controller, true);
    },
  });
}

function markEvent(event: string, mark: string): string {
  const lines = event.split(/\r?\n/);
  const data = lines.filter((line) => line.startsWith('data:')).map((line) => line.slice(line.startsWith('data: ') ? 6 : 5));
  if (data.length === 0) return event;
  let message: { method?: unknown; params?: Record<string, unknown> };
  try {
    message = JSON.parse(data.join('\n')) as typeof message;
  } catch {
    return event;
  }
  if (typeof message !== 'object' || message === null || typeof message.method !== 'string') return event;
  const params = message.params ?? {};
  const meta = typeof params._meta === 'object' && params._meta !== null ? (params._meta as Record<string, unknown>) : {};
  message.params = { ...params, _meta: { ...meta, [CALL_MARK]: mark } };
  const others = lines.filter((line) => !line.startsWith('data:'));
  return [...others, `data: ${JSON.stringify(message)}`].join('\n');
}
