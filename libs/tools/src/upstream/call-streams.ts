import type { FetchLike } from '@modelcontextprotocol/client';

/**
 * Which agent request an upstream's server→client request or log message belongs to, over
 * Streamable HTTP: the upstream sends those on the response stream of the request they concern,
 * but the SDK hands them to the client's handlers without saying which stream they came on. So
 * the gateway marks each agent request it forwards with a token in `params._meta[CALL_MARK]`;
 * the transport's fetch (callStreamFetch) takes the mark out before the request leaves (the
 * upstream never sees it) and writes it into the `_meta` of every request and notification that
 * comes back on that request's event stream. Handlers read it with callMarkOf.
 */
export const CALL_MARK = 'io.secure-mcp-gateway/call';

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
    if (init?.method !== 'POST' || typeof init.body !== 'string' || !init.body.includes(CALL_MARK)) return inner(url, init);
    let message: { params?: { _meta?: Record<string, unknown> } };
    try {
      message = JSON.parse(init.body) as typeof message;
    } catch {
      return inner(url, init);
    }
    const mark = Array.isArray(message) ? undefined : takeCallMark(message.params);
    if (mark === undefined) return inner(url, init);
    const response = await inner(url, { ...init, body: JSON.stringify(message) });
    const type = response.headers.get('content-type') ?? '';
    if (!response.body || !type.toLowerCase().startsWith('text/event-stream')) return response;
    return new Response(response.body.pipeThrough(markEvents(mark)), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
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
