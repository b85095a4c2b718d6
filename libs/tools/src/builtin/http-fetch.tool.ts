import { lookup } from 'node:dns/promises';
import { ClientRequest, IncomingMessage, request as httpRequest, RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, LookupFunction } from 'node:net';
import { ToolError, ToolErrorCode, abortedError } from '../provider/tool-error';
import type { ToolCallContext, ToolDefinition } from '../provider/tool-provider';
import type { BuiltinTool } from './builtin-tool';
import { HostAllowList } from './host-allow-list';
import { classifyAddress } from './ip-address-class';

export interface HttpFetchSettings {
  allowedHosts: readonly string[];
  maxBytes: number;
  timeoutMs: number;
  /**
   * Private, loopback and other non-public addresses: `never` in production. `always` and
   * `first-hop` exist for tests (a loopback test server); metadata addresses stay refused.
   */
  allowPrivate: 'never' | 'first-hop' | 'always';
}

/** Opens the connection; replaceable so tests can prove a refused request never reached the network layer. */
export type HttpTransport = (url: URL, options: RequestOptions) => ClientRequest;

export const nodeHttpTransport: HttpTransport = (url, options) =>
  url.protocol === 'https:' ? httpsRequest(options) : httpRequest(options);

export const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Headers the caller may not set: they belong to the connection, or would bypass the checks here. */
const FORBIDDEN_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-authorization',
  'proxy-connection',
  'accept-encoding',
]);
/** Dropped when a redirect leaves the original origin, as browsers do. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

interface FetchInput {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
  followRedirects?: boolean;
}

interface Vetted {
  address: string;
  family: 4 | 6;
}

/**
 * data — GET or POST to allow-listed hosts only. Every hop (the first request and each redirect,
 * followed here rather than by a library) is checked: http/https, host on the allow-list, every
 * address the name resolves to public; the connection then goes to the vetted address itself
 * (a pinned `lookup`), so a second DNS answer cannot swap it. The body stops being read past the
 * size limit, and the whole exchange runs under one deadline and the caller's abort signal.
 */
export class HttpFetchTool implements BuiltinTool {
  readonly definition: ToolDefinition;
  private readonly allowList: HostAllowList;

  constructor(
    private readonly settings: HttpFetchSettings,
    private readonly transport: HttpTransport = nodeHttpTransport,
  ) {
    this.allowList = new HostAllowList(settings.allowedHosts);
    this.definition = {
      id: 'tool_http_fetch',
      name: 'http_fetch',
      title: 'HTTP fetch (allow-listed hosts)',
      description:
        "Sends a GET or POST request to a host on the server's allow-list and returns status, headers and body " +
        `(UTF-8 text, or base64 for binary). Private, loopback, link-local and metadata addresses are refused after DNS ` +
        `resolution and on every redirect (at most ${MAX_REDIRECTS}); bodies over ${settings.maxBytes} bytes and calls over ` +
        `${settings.timeoutMs} ms fail.`,
      version: '1.0.0',
      category: 'data',
      inputSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['url'],
        properties: {
          url: { type: 'string', minLength: 1, maxLength: 2048, pattern: '^[Hh][Tt][Tt][Pp][Ss]?://', description: 'An http or https URL' },
          method: { type: 'string', enum: ['GET', 'POST'], default: 'GET' },
          headers: {
            type: 'object',
            maxProperties: 32,
            propertyNames: { pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$" },
            additionalProperties: { type: 'string', maxLength: 4096, pattern: '^[^\\r\\n\\u0000]*$' },
          },
          body: { type: 'string', maxLength: settings.maxBytes, description: 'POST only' },
          timeoutMs: { type: 'integer', minimum: 1, maximum: settings.timeoutMs, description: `At most ${settings.timeoutMs}` },
          followRedirects: { type: 'boolean', default: true },
        },
      },
      outputSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['url', 'status', 'statusText', 'headers', 'body', 'bodyEncoding', 'bytes', 'redirects', 'durationMs'],
        properties: {
          url: { type: 'string', description: 'The URL of the final response' },
          status: { type: 'integer', minimum: 100, maximum: 599 },
          statusText: { type: 'string' },
          headers: { type: 'object', additionalProperties: { type: 'string' } },
          body: { type: 'string' },
          bodyEncoding: { type: 'string', enum: ['utf-8', 'base64'] },
          bytes: { type: 'integer', minimum: 0 },
          redirects: { type: 'array', maxItems: MAX_REDIRECTS, items: { type: 'string' } },
          durationMs: { type: 'number', minimum: 0 },
        },
      },
      permissions: ['tools:execute'],
      rateLimit: { requests: 30, window: '1m' },
      // A POST to another system may change it: not read-only, and we cannot promise harmless.
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
      enabledByDefault: true,
    };
  }

  async execute(raw: unknown, ctx: ToolCallContext): Promise<unknown> {
    const input = raw as FetchInput;
    const started = performance.now();
    let url = this.parseUrl(input.url);
    let method = input.method ?? 'GET';
    let body = input.body;
    if (body !== undefined && method !== 'POST') throw new ToolError(ToolErrorCode.INVALID_INPUT, 'only POST requests carry a body');
    let headers = this.requestHeaders(input.headers ?? {});
    if (body !== undefined && Buffer.byteLength(body) > this.settings.maxBytes) {
      throw new ToolError(ToolErrorCode.TOO_LARGE, `the request body is larger than ${this.settings.maxBytes} bytes`);
    }

    const timeoutMs = Math.min(input.timeoutMs ?? this.settings.timeoutMs, this.settings.timeoutMs);
    const controller = new AbortController();
    const onAbort = () => controller.abort(abortedError(ctx.signal));
    if (ctx.signal.aborted) throw abortedError(ctx.signal);
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => controller.abort(new ToolError(ToolErrorCode.TIMEOUT, `the request took longer than ${timeoutMs} ms`)),
      timeoutMs,
    );
    const signal = controller.signal;

    try {
      const redirects: string[] = [];
      for (let hop = 0; ; hop++) {
        const vetted = await this.vet(url, hop, signal);
        const response = await this.send(url, method, headers, body, vetted, signal);
        const location = response.headers.location;
        if (REDIRECT_STATUSES.has(response.statusCode ?? 0) && location && input.followRedirects !== false) {
          response.destroy();
          if (redirects.length >= MAX_REDIRECTS) {
            throw new ToolError(ToolErrorCode.TOO_MANY_REDIRECTS, `more than ${MAX_REDIRECTS} redirects`);
          }
          let next: URL;
          try {
            next = new URL(location, url);
          } catch {
            throw new ToolError(ToolErrorCode.UPSTREAM_ERROR, 'the server redirected to an invalid URL');
          }
          if (next.origin !== url.origin) {
            headers = Object.fromEntries(Object.entries(headers).filter(([name]) => !CREDENTIAL_HEADERS.includes(name)));
          }
          if (response.statusCode === 303 || ((response.statusCode === 301 || response.statusCode === 302) && method === 'POST')) {
            method = 'GET';
            body = undefined;
            headers = Object.fromEntries(Object.entries(headers).filter(([name]) => name !== 'content-type'));
          }
          url = this.parseUrl(next.href);
          redirects.push(url.href);
          continue;
        }
        const content = await this.readBody(response, signal);
        const text = this.decodeText(content);
        return {
          url: url.href,
          status: response.statusCode ?? 0,
          statusText: response.statusMessage ?? '',
          headers: Object.fromEntries(
            Object.entries(response.headers)
              .filter(([, value]) => value !== undefined)
              .map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : String(value)]),
          ),
          body: text ?? content.toString('base64'),
          bodyEncoding: text === undefined ? 'base64' : 'utf-8',
          bytes: content.length,
          redirects,
          durationMs: Math.round((performance.now() - started) * 1000) / 1000,
        };
      }
    } catch (error) {
      if (signal.aborted) throw signal.reason instanceof ToolError ? signal.reason : abortedError(ctx.signal);
      throw error;
    } finally {
      clearTimeout(timer);
      ctx.signal.removeEventListener('abort', onAbort);
    }
  }

  private parseUrl(raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ToolError(ToolErrorCode.INVALID_INPUT, 'url is not a valid URL', [
        { field: '/url', message: 'must be an absolute http(s) URL' },
      ]);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ToolError(ToolErrorCode.INVALID_INPUT, `${url.protocol} URLs are not allowed; use http or https`);
    }
    if (url.username || url.password)
      throw new ToolError(ToolErrorCode.INVALID_INPUT, 'URLs with credentials are not allowed; send an Authorization header');
    return url;
  }

  private requestHeaders(input: Record<string, string>): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const [rawName, value] of Object.entries(input)) {
      const name = rawName.toLowerCase();
      if (FORBIDDEN_HEADERS.has(name) || name.startsWith('proxy-') || name.startsWith('sec-')) {
        throw new ToolError(ToolErrorCode.INVALID_INPUT, `the ${name} header may not be set`, [
          { field: `/headers/${rawName}`, message: 'may not be set' },
        ]);
      }
      if (/[\r\n\0]/.test(value)) throw new ToolError(ToolErrorCode.INVALID_INPUT, `the ${name} header has an invalid value`);
      headers[name] = value;
    }
    return headers;
  }

  /** Allow-list, then DNS, then every resolved address: the checks that run before each hop connects. */
  private async vet(url: URL, hop: number, signal: AbortSignal): Promise<Vetted> {
    const host = HostAllowList.normalise(url.hostname);
    if (!this.allowList.allows(host)) throw new ToolError(ToolErrorCode.HOST_NOT_ALLOWED, `${host} is not on the allow-list`);
    const literal = host.replace(/^\[|\]$/g, '');
    let addresses: Array<{ address: string; family: number }>;
    if (isIP(literal)) {
      addresses = [{ address: literal, family: isIP(literal) }];
    } else {
      try {
        addresses = await this.raceAbort(lookup(literal, { all: true, verbatim: true }), signal);
      } catch (error) {
        if (signal.aborted) throw error;
        throw new ToolError(ToolErrorCode.UPSTREAM_ERROR, `${host} could not be resolved`);
      }
    }
    if (addresses.length === 0) throw new ToolError(ToolErrorCode.UPSTREAM_ERROR, `${host} could not be resolved`);
    const privateAllowed = this.settings.allowPrivate === 'always' || (this.settings.allowPrivate === 'first-hop' && hop === 0);
    // Every address must pass, not just the first: a name answering with a public and a private address is refused.
    for (const { address } of addresses) {
      const cls = classifyAddress(address);
      if (cls === 'public' || (privateAllowed && cls !== 'metadata' && cls !== 'invalid')) continue;
      throw new ToolError(ToolErrorCode.FORBIDDEN_ADDRESS, `${host} resolves to a ${cls} address, which may not be fetched`);
    }
    return { address: addresses[0].address, family: addresses[0].family === 6 ? 6 : 4 };
  }

  private send(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: string | undefined,
    vetted: Vetted,
    signal: AbortSignal,
  ): Promise<IncomingMessage> {
    // Connect to the vetted address whatever the resolver would say now (DNS rebinding).
    const pinned: LookupFunction = (_hostname, options, callback) => {
      if (options.all) (callback as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [vetted]);
      else callback(null, vetted.address, vetted.family);
    };
    const hostname = url.hostname.replace(/^\[|\]$/g, '');
    const requestHeaders: Record<string, string> = {
      'user-agent': 'secure-mcp-server tool_http_fetch/1.0',
      accept: '*/*',
      ...headers,
      // Compressed bodies would defeat the size limit (a small gzip can inflate enormously); we never decode them.
      'accept-encoding': 'identity',
    };
    if (body !== undefined) {
      requestHeaders['content-type'] ??= 'text/plain; charset=utf-8';
      requestHeaders['content-length'] = String(Buffer.byteLength(body));
    }
    return new Promise<IncomingMessage>((resolve, reject) => {
      let request: ClientRequest;
      try {
        request = this.transport(url, {
          protocol: url.protocol,
          hostname,
          port: url.port || undefined,
          path: `${url.pathname}${url.search}`,
          method,
          headers: requestHeaders,
          agent: false,
          lookup: pinned,
          signal,
          ...(url.protocol === 'https:' && !isIP(hostname) ? { servername: hostname } : {}),
        });
      } catch (error) {
        reject(error);
        return;
      }
      request.once('response', resolve);
      request.once('error', (error: NodeJS.ErrnoException) => {
        if (signal.aborted) reject(error);
        else reject(new ToolError(ToolErrorCode.UPSTREAM_ERROR, `could not reach ${url.host}: ${error.code ?? error.message}`));
      });
      request.end(body);
    });
  }

  private async readBody(response: IncomingMessage, signal: AbortSignal): Promise<Buffer> {
    const max = this.settings.maxBytes;
    const declared = Number(response.headers['content-length']);
    if (Number.isFinite(declared) && declared > max) {
      response.destroy();
      throw new ToolError(ToolErrorCode.TOO_LARGE, `the response is ${declared} bytes; the limit is ${max}`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        total += chunk.length;
        if (total > max) {
          response.destroy();
          throw new ToolError(ToolErrorCode.TOO_LARGE, `the response is larger than ${max} bytes`);
        }
        chunks.push(chunk);
      }
    } catch (error) {
      if (error instanceof ToolError || signal.aborted) throw error;
      const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new ToolError(ToolErrorCode.UPSTREAM_ERROR, `the response broke off: ${reason}`);
    }
    return Buffer.concat(chunks, total);
  }

  private decodeText(content: Buffer): string | undefined {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(content);
    } catch {
      return undefined;
    }
  }

  private raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (error) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });
  }
}
