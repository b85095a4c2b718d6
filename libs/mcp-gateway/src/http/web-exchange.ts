import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * A web-standard Request for the SDK from Fastify's request, without a body: the gateway parses
 * the body once and hands it to the SDK as `parsedBody` (a body stream per request is measurable
 * cost). Its signal fires when the client goes away before the answer is complete: watched on the
 * response, because the request stream closes as soon as its body has been read.
 */
export function toWebRequest(request: FastifyRequest, reply: FastifyReply): Request {
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
  return new Request(`${request.protocol}://${request.host}${request.url}`, { method: request.method, headers, signal: controller.signal });
}

/**
 * Writes the SDK's Response through Fastify: whole bodies via `reply.send` (so Fastify's hooks,
 * headers and request log see them), event streams by streaming the body onto the socket.
 */
export async function sendWebResponse(reply: FastifyReply, response: Response): Promise<void> {
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const streaming = (headers['content-type'] ?? '').startsWith('text/event-stream');
  if (!streaming || !response.body) {
    const text = response.body ? await response.text() : '';
    await reply.code(response.status).headers(headers).send(text);
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
