import type { IncomingHttpHeaders } from 'node:http';
import type { FetchLike } from '@modelcontextprotocol/client';
import type { Agent, Dispatcher } from 'undici';

/**
 * The fetch the upstream transport uses (issue 18): undici's `request` (the HTTP/1.1 client the
 * Node.js project maintains, which Node's own fetch is built on) on kept-alive connections,
 * instead of the global fetch. The global fetch (undici's WHATWG layer) cost the gateway about as
 * much CPU per upstream call as the rest of the call: request and response objects, web streams
 * for a body of a few hundred bytes, abort-signal plumbing; Node's `http.request` (ClientRequest,
 * IncomingMessage, the agent, readable streams and their events) about a third of the hop. This
 * sends the same request (method, headers, body, abort signal). A successful answer that is not an
 * event stream (the upstream's JSON) is read whole and handed over as a BufferedAnswer, the part
 * of a Response the SDK's transport reads, without a web Response and its web stream; an event
 * stream (SSE) is handed over as it arrives, as a web stream in a standard Response, and so is any
 * other answer (errors). Redirects are not followed here (as with `redirect: 'manual'`): the SDK's
 * same-origin policy decides (fetchWithinOrigin). Connection errors reject as fetch's do
 * (TypeError "fetch failed" with the cause), an abort with the signal's reason. Anything it does
 * not handle (a body that is not a string or bytes) goes to `fallback`.
 */
export function upstreamFetch(fallback: FetchLike = (url, init) => fetch(url, init)): FetchLike {
  return (url, init) => {
    const body = init?.body;
    if (body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof Uint8Array)) return fallback(url, init);
    const target = typeof url === 'string' ? new URL(url) : url;
    if (target.protocol !== 'http:' && target.protocol !== 'https:') return fallback(url, init);
    return send(target, init ?? {}, body ?? undefined);
  };
}

/**
 * Kept-alive connections to the upstreams, shared by every upstream connection of this process
 * (as the global fetch's pool was). Idle sockets close after 5 s, or earlier when the upstream's
 * `Keep-Alive: timeout=` says so (undici reads it), so a request is not sent on a socket the
 * upstream is closing.
 */
let agent: Agent | undefined;

/**
 * The pool, made (and undici loaded) on the first request to an HTTP upstream: a gateway without
 * one does not pay for loading undici at start (issue 18, P8: about 130 ms of a 2-core machine's start).
 */
function pool(): Agent {
  agent ??= new (require('undici') as typeof import('undici')).Agent({ keepAliveTimeout: 5_000, keepAliveMaxTimeout: 5_000 });
  return agent;
}

/**
 * One request through undici's dispatcher, its answer taken as it arrives (undici's handler API: no
 * Node stream per answer, which `request()` would add): a JSON answer gathered whole, an event
 * stream fed to a web stream with backpressure (a full stream pauses the connection). No header or
 * body timeout of undici's own: the SDK's request timeout and the signal end a call.
 */
function send(url: URL, init: RequestInit, body: string | Uint8Array | undefined): Promise<Response> {
  const signal = init.signal ?? undefined;
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  const method = (init.method ?? 'GET') as Dispatcher.HttpMethod;
  return new Promise<Response>((resolve, reject) => {
    let control: Dispatcher.DispatchController | undefined;
    let head: { status: number; statusText: string; headers: IncomingHttpHeaders } | undefined;
    let chunks: Buffer[] | undefined;
    let stream: ReadableStreamDefaultController<Uint8Array> | undefined;
    const onAbort = () => control?.abort(abortReason(signal!) as Error);
    signal?.addEventListener('abort', onAbort, { once: true });
    const settle = () => signal?.removeEventListener('abort', onAbort);
    const failure = (error: unknown) => (signal?.aborted ? abortReason(signal) : new TypeError('fetch failed', { cause: error }));
    const request = {
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method,
      headers: headerRecord(init.headers),
      body: body ?? null,
    };
    pool().dispatch(
      { ...request, headersTimeout: 0, bodyTimeout: 0 },
      {
        onRequestStart: (controller) => {
          control = controller;
          if (signal?.aborted) controller.abort(abortReason(signal) as Error);
        },
        onResponseStart: (controller, status, headers, statusText = '') => {
          head = { status, statusText, headers };
          // A null-body status (204, 304) or a HEAD request: no body to wait for.
          if (status === 204 || status === 304 || method === 'HEAD') {
            resolve(withUrl(new Response(null, { status, statusText, headers: webHeaders(headers) }), url));
            return;
          }
          const type = headers['content-type'];
          if (typeof type === 'string' && type.toLowerCase().startsWith('text/event-stream')) {
            // An event stream stays open while the upstream works: handed over as it arrives.
            const events = new ReadableStream<Uint8Array>({
              start: (controller) => void (stream = controller),
              pull: () => controller.resume(),
              cancel: () => {
                settle();
                controller.abort(new Error('The event stream was cancelled'));
              },
            });
            resolve(withUrl(new Response(events, { status, statusText, headers: webHeaders(headers) }), url));
            return;
          }
          chunks = [];
        },
        onResponseData: (controller, chunk) => {
          if (stream) {
            stream.enqueue(chunk);
            if ((stream.desiredSize ?? 1) <= 0) controller.pause();
          } else chunks?.push(chunk);
        },
        onResponseEnd: () => {
          settle();
          if (stream) return stream.close();
          if (!chunks || !head) return;
          const { status, statusText, headers } = head;
          const bytes = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
          resolve(
            status >= 200 && status < 300
              ? (new BufferedAnswer(status, statusText, headers, bytes, url.href) as unknown as Response)
              : withUrl(new Response(bytes, { status, statusText, headers: webHeaders(headers) }), url),
          );
        },
        onResponseError: (_controller, error) => {
          settle();
          if (stream) stream.error(signal?.aborted ? abortReason(signal) : error);
          else reject(failure(error));
        },
      },
    );
  });
}

/** Fetch's `response.url`: the SDK reads it when it explains a redirect it did not follow. */
function withUrl(response: Response, url: URL): Response {
  Object.defineProperty(response, 'url', { value: url.href });
  return response;
}

function headerRecord(headers: RequestInit['headers']): Record<string, string> {
  const record: Record<string, string> = {};
  if (!headers) return record;
  if (headers instanceof Headers) {
    headers.forEach((value, name) => (record[name] = value));
  } else if (Array.isArray(headers)) {
    for (const [name, value] of headers) record[name.toLowerCase()] = value;
  } else {
    for (const [name, value] of Object.entries(headers)) if (value !== undefined) record[name.toLowerCase()] = String(value);
  }
  return record;
}

function webHeaders(headers: IncomingHttpHeaders): Headers {
  const web = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (Array.isArray(value)) for (const item of value) web.append(name, item);
    else if (value !== undefined) web.append(name, value);
  }
  return web;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/**
 * A successful answer read whole (the upstream's JSON): what the SDK's transport reads of a
 * Response (status, ok, headers.get/has, json, text, body) over the bytes as they came, without
 * building a web Response, its Headers and a web stream for a body of a few hundred bytes. The
 * body reads once, as a Response's does; `headers` answers as a Headers object would (names
 * case-insensitive, repeated values joined with ", ").
 */
export class BufferedAnswer {
  readonly type = 'basic';
  readonly redirected = false;
  readonly headers: AnswerHeaders;
  private content: Buffer | null;
  private stream: ReadableStream<Uint8Array> | undefined;

  constructor(
    readonly status: number,
    readonly statusText: string,
    headers: IncomingHttpHeaders,
    bytes: Buffer,
    readonly url: string,
  ) {
    this.headers = new AnswerHeaders(headers);
    this.content = bytes;
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  get bodyUsed(): boolean {
    return this.content === null;
  }

  /** The body as a web stream (made when first asked for; reading it uses the body up, as text() would). */
  get body(): ReadableStream<Uint8Array> {
    this.stream ??= new ReadableStream({
      pull: (controller) => {
        const bytes = this.take();
        if (bytes.length > 0) controller.enqueue(new Uint8Array(bytes));
        controller.close();
      },
    });
    return this.stream;
  }

  async text(): Promise<string> {
    return utf8(this.take());
  }

  async json(): Promise<unknown> {
    return JSON.parse(utf8(this.take()));
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    const bytes = this.take();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(this.take());
  }

  clone(): BufferedAnswer {
    if (this.content === null) throw new TypeError('Response.clone: Body has already been consumed.');
    return new BufferedAnswer(this.status, this.statusText, this.headers.raw, this.content, this.url);
  }

  private take(): Buffer {
    if (this.content === null) throw new TypeError('Body is unusable: Body has already been read');
    const bytes = this.content;
    this.content = null;
    return bytes;
  }
}

/** The read side of a Headers object over Node's parsed response headers (lower-case names). */
export class AnswerHeaders {
  constructor(readonly raw: IncomingHttpHeaders) {}

  get(name: string): string | null {
    const value = this.raw[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }

  has(name: string): boolean {
    return this.raw[name.toLowerCase()] !== undefined;
  }

  getSetCookie(): string[] {
    const value = this.raw['set-cookie'];
    return value === undefined ? [] : Array.isArray(value) ? [...value] : [value];
  }

  forEach(callback: (value: string, name: string, headers: AnswerHeaders) => void): void {
    for (const [name, value] of this.entries()) callback(value, name, this);
  }

  *entries(): IterableIterator<[string, string]> {
    for (const name of Object.keys(this.raw).sort()) {
      const value = this.get(name);
      if (value !== null) yield [name, value];
    }
  }

  *keys(): IterableIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): IterableIterator<string> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }
}

/** A body's bytes as text, as Response.text() decodes them (UTF-8, a leading byte-order mark dropped). */
function utf8(bytes: Buffer): string {
  const start = bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  return bytes.toString('utf8', start);
}
