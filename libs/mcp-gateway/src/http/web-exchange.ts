import type { FastifyReply, FastifyRequest } from 'fastify';
import { AnswerHeaders } from '@app/tools';
import { JsonAnswer } from './json-answer';

/**
 * A web-standard Request for the SDK from Fastify's request, without a body: the gateway parses
 * the body once and hands it to the SDK as `parsedBody` (a body stream per request is measurable
 * cost). Its signal fires when the client goes away before the answer is complete: watched on the
 * response, because the request stream closes as soon as its body has been read.
 */
export function toWebRequest(request: FastifyRequest, reply: FastifyReply): Request {
  const { headers, signal } = exchangeOf(request, reply);
  return new Request(urlOf(request), { method: request.method, headers, signal });
}

/**
 * What the SDK's modern (2026-07-28) handler reads of a request whose body it is given parsed:
 * `method`, `headers.get`, `signal` (`aborted`, `abort` listeners) and `url`. Constructing a real
 * Request (URL parse, a second Headers copy, a second AbortSignal following the first) was ~3.5%
 * of a tools/call's CPU in the P3 profile; a Headers copy and an AbortController per request
 * still cost about 2%. So the headers are a read-only view of Node's and the signal a plain
 * listener list fired by the response's `close`. Only for `McpHttpHandler.fetch` with
 * `parsedBody` on the modern route: anything that reads the body, clones the request or hands
 * its signal to other web APIs gets toWebRequest's.
 */
export function toModernRequest(request: FastifyRequest, reply: FastifyReply): Request {
  return new ModernRequest(request, new ClientGoneSignal(reply)) as unknown as Request;
}

class ModernRequest {
  readonly method: string;
  /** Headers' reading face over Node's parsed request headers (as upstream answers get it): no copy. */
  readonly headers: AnswerHeaders;

  constructor(
    private readonly request: FastifyRequest,
    readonly signal: ClientGoneSignal,
  ) {
    this.method = request.method;
    this.headers = new AnswerHeaders(request.headers);
  }

  get url(): string {
    return urlOf(this.request);
  }
}

/**
 * What the SDK does with a request's signal (`aborted`, add and remove `abort` listeners), as
 * toWebRequest's signal behaves: aborted when the response closes before it has finished, i.e.
 * the client went away.
 */
class ClientGoneSignal {
  private gone = false;
  private readonly listeners: Array<(event: Event) => void> = [];

  constructor(reply: FastifyReply) {
    const response = reply.raw;
    response.once('close', () => {
      if (!response.writableFinished) this.abort();
    });
  }

  get aborted(): boolean {
    return this.gone;
  }

  addEventListener(type: string, listener: (event: Event) => void): void {
    if (type === 'abort' && !this.gone && !this.listeners.includes(listener)) this.listeners.push(listener);
  }

  removeEventListener(type: string, listener: (event: Event) => void): void {
    const at = type === 'abort' ? this.listeners.indexOf(listener) : -1;
    if (at >= 0) this.listeners.splice(at, 1);
  }

  private abort(): void {
    if (this.gone) return;
    this.gone = true;
    const event = new Event('abort');
    // Each listener once, as registered with { once: true }.
    for (const listener of this.listeners.splice(0)) listener(event);
  }
}

function exchangeOf(request: FastifyRequest, reply: FastifyReply): { headers: Headers; signal: AbortSignal } {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    else headers.set(name, String(value));
  }
  return { headers, signal: controller.signal };
}

function urlOf(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}${request.url}`;
}

/**
 * Writes the SDK's Response through Fastify: whole bodies via `reply.send` (so Fastify's hooks,
 * headers and request log see them), event streams by streaming the body onto the socket.
 * `rewrite` edits a whole answer before it is sent (see ToolListSplice). A JsonAnswer (a whole
 * JSON answer the SDK did not wrap in a Response) goes out with the same status, content type and
 * bytes the Response would have had.
 */
export async function sendWebResponse(
  reply: FastifyReply,
  response: Response | JsonAnswer,
  rewrite?: (body: string) => string | Buffer,
): Promise<void> {
  if (response instanceof JsonAnswer) {
    const body = response.body;
    await reply
      .code(response.status)
      .header('content-type', 'application/json')
      // Bytes, as for a Response: Fastify would add a charset to a JSON string's content type.
      .send(rewrite ? rewrite(body) : Buffer.from(body));
    return;
  }
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const streaming = (headers['content-type'] ?? '').startsWith('text/event-stream');
  if (rewrite) {
    // A whole answer to edit (also an event stream that ends after its one answer).
    delete headers['content-length'];
    await reply
      .code(response.status)
      .headers(headers)
      .send(rewrite(await response.text()));
    return;
  }
  if (!streaming || !response.body) {
    // Bytes as they are: decoding to a string only for Fastify to encode it again is measurable.
    const body = response.body ? Buffer.from(await response.arrayBuffer()) : '';
    await reply.code(response.status).headers(headers).send(body);
    return;
  }
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(response.status, { ...(reply.getHeaders() as Record<string, string>), ...headers });
  raw.flushHeaders();
  const reader = response.body.getReader();
  raw.once('close', () => {
    reader.cancel().catch(() => undefined);
  });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      raw.write(value);
    }
  } catch {
    // The client went away, or the stream was cancelled: nothing left to write to.
  }
  raw.end();
}
