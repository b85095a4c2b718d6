import { Agent as HttpAgent, IncomingMessage, request as httpRequest, RequestOptions } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import type { FetchLike } from '@modelcontextprotocol/client';

/**
 * The fetch the upstream transport uses (issue 18): Node's own HTTP client over kept-alive
 * connections instead of the global fetch. The global fetch (undici's WHATWG implementation)
 * cost the gateway about as much CPU per upstream call as the rest of the call: request and
 * response objects, web streams for a body of a few hundred bytes, abort-signal plumbing. This
 * one sends the same request (method, headers, body, abort signal) and answers a standard
 * Response: a JSON answer is read whole before it is handed over; an event stream (SSE) is
 * handed over as it arrives, as a web stream. Redirects are not followed here (as with
 * `redirect: 'manual'`): the SDK's same-origin policy decides (fetchWithinOrigin). Connection
 * errors reject as fetch's do (TypeError "fetch failed" with the system error as its cause), an
 * abort with the signal's reason. Anything it does not handle (a body that is not a string or
 * bytes) goes to `fallback`.
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
 * `Keep-Alive: timeout=` says so (Node's agent reads it), so a request is not sent on a socket
 * the upstream is closing.
 */
const AGENT_OPTIONS = { keepAlive: true, timeout: 5_000, scheduling: 'lifo' as const };
const httpAgent = new HttpAgent(AGENT_OPTIONS);
const httpsAgent = new HttpsAgent(AGENT_OPTIONS);

function send(url: URL, init: RequestInit, body: string | Uint8Array | undefined): Promise<Response> {
  const signal = init.signal ?? undefined;
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  const headers = headerRecord(init.headers);
  if (body !== undefined) headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
  const https = url.protocol === 'https:';
  const options: RequestOptions = {
    method: init.method ?? 'GET',
    headers,
    agent: https ? httpsAgent : httpAgent,
    signal,
  };
  return new Promise<Response>((resolve, reject) => {
    const fail = (error: Error) => reject(signal?.aborted ? abortReason(signal) : new TypeError('fetch failed', { cause: error }));
    const request = (https ? httpsRequest : httpRequest)(url, options, (response) => {
      const status = response.statusCode ?? 0;
      const answer = { status, statusText: response.statusMessage ?? '', headers: responseHeaders(response) };
      const type = response.headers['content-type'] ?? '';
      // A null-body status (204, 304) or a HEAD request: no body to wait for.
      if (status === 204 || status === 304 || options.method === 'HEAD') {
        response.resume();
        resolve(withUrl(new Response(null, answer), url));
        return;
      }
      if (type.toLowerCase().startsWith('text/event-stream')) {
        // An event stream stays open while the upstream works: handed over as it arrives.
        resolve(withUrl(new Response(Readable.toWeb(response) as ReadableStream<Uint8Array>, answer), url));
        return;
      }
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('end', () => resolve(withUrl(new Response(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), answer), url)));
      response.once('error', fail);
      response.once('aborted', () => fail(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
    });
    request.once('error', fail);
    request.end(body);
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

function responseHeaders(response: IncomingMessage): Headers {
  const headers = new Headers();
  const raw = response.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i], raw[i + 1]);
  return headers;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}
