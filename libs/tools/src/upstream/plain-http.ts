import { connect, Socket } from 'node:net';

/**
 * A minimal HTTP/1.1 client for plain `http:` upstreams on kept-alive connections (issue 18): the
 * request goes out in one write, the answer is read off the socket by a small parser (status
 * line, headers, a body framed by Content-Length, chunked transfer coding or the connection's
 * end). Node's own client (ClientRequest, IncomingMessage, its agent, readable streams and their
 * events) cost the gateway about 100 µs of CPU per upstream call over this; the bytes on the wire
 * are the same in substance: the method, path, Host, `Connection: keep-alive`, the given headers
 * and the body. Connections are pooled per origin, last used first, and closed after 5 s idle (or
 * earlier when the upstream's `Keep-Alive: timeout=` says so, one second before it). A header
 * name or value that could split the request (CR, LF, NUL, or a name that is no HTTP token) is
 * refused, as Node's client refuses it. https goes through Node's client (upstream-fetch.ts).
 */

/** The parsed head of an answer, and its body as it arrives. */
export interface PlainAnswer {
  status: number;
  statusText: string;
  /** Lower-case names; repeated values joined with ", " (set-cookie kept as a list), as Node's `IncomingMessage.headers`. */
  headers: Record<string, string | string[]>;
  /** Names and values as they came, in order. */
  rawHeaders: string[];
}

/** Where the body of an answer goes: chunks as they arrive, then its end or an error. */
export interface BodySink {
  data(chunk: Buffer): void;
  end(): void;
  error(error: Error): void;
}

/** What the caller does with an answer once its head is read: returns where its body goes (null: no body expected). */
export type OnAnswer = (answer: PlainAnswer, control: { pause(): void; resume(): void; cancel(): void }) => BodySink;

const IDLE_MS = 5_000;
const MAX_HEAD_BYTES = 64 * 1024;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const UNSAFE_VALUE = /[\r\n\0]/;
const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');

const pool = new Map<string, Socket[]>();
/** Per idle socket: the listeners that take it out of the pool when it closes or errors while idle. */
const idleWatch = new WeakMap<Socket, () => void>();

/**
 * Sends one request; `onAnswer` is called with the answer's head (interim 1xx answers skipped).
 * Rejects (before any answer) with the connection's error or the request's refusal; after the
 * head, errors go to the body sink.
 */
export function plainRequest(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | Uint8Array | undefined,
  signal: AbortSignal | undefined,
  onAnswer: OnAnswer,
): Promise<void> {
  let head: string;
  try {
    head = requestHead(url, method, headers);
  } catch (error) {
    return Promise.reject(error);
  }
  return new Promise<void>((resolve, reject) => {
    const origin = `${url.hostname}:${url.port || '80'}`;
    const socket = takeIdle(origin) ?? openSocket(url);
    const exchange = new Exchange(socket, origin, method === 'HEAD', onAnswer, resolve, reject, signal);
    exchange.start(head, body);
  });
}

function requestHead(url: URL, method: string, headers: Record<string, string>): string {
  if (!TOKEN.test(method)) throw new TypeError(`Invalid HTTP method: ${JSON.stringify(method)}`);
  let head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: keep-alive\r\n`;
  for (const name in headers) {
    const value = headers[name];
    if (!TOKEN.test(name)) throw new TypeError(`Header name must be a valid HTTP token ["${name}"]`);
    if (UNSAFE_VALUE.test(value)) throw new TypeError(`Invalid character in header content ["${name}"]`);
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

function openSocket(url: URL): Socket {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const socket = connect({ host, port: Number(url.port || 80) });
  socket.setNoDelay(true);
  return socket;
}

function takeIdle(origin: string): Socket | undefined {
  const idle = pool.get(origin);
  while (idle && idle.length > 0) {
    const socket = idle.pop()!;
    if (idle.length === 0) pool.delete(origin);
    idleWatch.get(socket)?.();
    if (!socket.destroyed && socket.readyState === 'open') {
      socket.ref();
      return socket;
    }
  }
  return undefined;
}

function putIdle(origin: string, socket: Socket, idleMs: number): void {
  const drop = () => {
    unwatch();
    socket.destroy();
    const idle = pool.get(origin);
    const at = idle?.indexOf(socket) ?? -1;
    if (idle && at >= 0) idle.splice(at, 1);
    if (idle?.length === 0) pool.delete(origin);
  };
  const unwatch = () => {
    socket.off('close', drop);
    socket.off('error', drop);
    socket.off('end', drop);
    socket.off('data', drop);
    socket.off('timeout', drop);
    socket.setTimeout(0);
    idleWatch.delete(socket);
  };
  socket.on('close', drop);
  socket.on('error', drop);
  socket.on('end', drop);
  // Bytes on an idle connection answer nothing we asked: it cannot be reused.
  socket.on('data', drop);
  socket.on('timeout', drop);
  socket.setTimeout(idleMs);
  // As Node's agent does: an idle connection keeps TCP keep-alive probes and does not hold the process open.
  socket.setKeepAlive(true, 1_000);
  socket.unref();
  idleWatch.set(socket, unwatch);
  const idle = pool.get(origin);
  if (idle) idle.push(socket);
  else pool.set(origin, [socket]);
}

type Framing = { kind: 'none' } | { kind: 'length'; left: number } | { kind: 'chunked' } | { kind: 'close' };

/** One request and its answer on one socket. */
class Exchange {
  private pending: Buffer | null = null;
  private answered = false;
  private done = false;
  private sink: BodySink | null = null;
  private framing: Framing = { kind: 'none' };
  /** Chunked coding: bytes of the current chunk still to read, or -1 while reading a size line, -2 for the CRLF after data, -3 trailers. */
  private chunkLeft = -1;
  private keepAlive = true;
  private idleMs = IDLE_MS;
  private readonly onData = (chunk: Buffer) => this.read(chunk);
  private readonly onError = (error: Error) => this.fail(error);
  private readonly onEnd = () => this.closed();
  private readonly onAbort = () => this.abort();

  constructor(
    private readonly socket: Socket,
    private readonly origin: string,
    private readonly headRequest: boolean,
    private readonly onAnswer: OnAnswer,
    private readonly resolve: () => void,
    private readonly reject: (error: unknown) => void,
    private readonly signal: AbortSignal | undefined,
  ) {}

  start(head: string, body: string | Uint8Array | undefined): void {
    const socket = this.socket;
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('end', this.onEnd);
    socket.on('close', this.onEnd);
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    if (body === undefined || body.length === 0) socket.write(head, 'latin1');
    else if (typeof body === 'string') socket.write(head + body, 'utf8');
    else {
      socket.cork();
      socket.write(head, 'latin1');
      socket.write(body);
      socket.uncork();
    }
  }

  private read(chunk: Buffer): void {
    if (this.done) return;
    let data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    try {
      while (!this.answered) {
        const end = data.indexOf(HEAD_END);
        if (end < 0) {
          if (data.length > MAX_HEAD_BYTES) throw new Error('The answer head is too large');
          this.pending = data;
          return;
        }
        const interim = this.parseHead(data.toString('latin1', 0, end));
        data = data.subarray(end + 4);
        if (!interim) break;
      }
      this.body(data);
    } catch (error) {
      this.fail(error as Error);
    }
  }

  /** Parses a head; true for an interim (1xx) answer, which is skipped. */
  private parseHead(text: string): boolean {
    const lines = text.split('\r\n');
    const status = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0]);
    if (!status) throw new Error('Malformed answer status line');
    const code = Number(status[2]);
    if (code >= 100 && code < 200 && code !== 101) return true;
    const headers: Record<string, string | string[]> = {};
    const rawHeaders: string[] = [];
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error('Malformed answer header');
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      rawHeaders.push(name, value);
      const key = name.toLowerCase();
      const known = headers[key];
      if (key === 'set-cookie') headers[key] = known === undefined ? [value] : [...(known as string[]), value];
      else headers[key] = known === undefined ? value : `${known as string}, ${value}`;
    }
    const connection = String(headers.connection ?? '').toLowerCase();
    this.keepAlive = status[1] === '1' && !connection.split(',').some((token) => token.trim() === 'close');
    const hint = /timeout=(\d+)/i.exec(String(headers['keep-alive'] ?? ''));
    if (hint) this.idleMs = Math.min(IDLE_MS, Math.max(0, Number(hint[1]) * 1000 - 1000));
    if (this.idleMs === 0) this.keepAlive = false;
    const coding = String(headers['transfer-encoding'] ?? '').toLowerCase();
    if (this.headRequest || code === 204 || code === 304) this.framing = { kind: 'none' };
    else if (coding !== '') {
      if (coding.split(',').pop()!.trim() !== 'chunked') throw new Error(`Unsupported transfer coding: ${coding}`);
      this.framing = { kind: 'chunked' };
    } else if (headers['content-length'] !== undefined) {
      const length = String(headers['content-length']).split(',')[0].trim();
      if (!/^\d+$/.test(length)) throw new Error('Malformed answer content-length');
      this.framing = { kind: 'length', left: Number(length) };
    } else {
      this.framing = { kind: 'close' };
      this.keepAlive = false;
    }
    this.answered = true;
    const socket = this.socket;
    this.sink = this.onAnswer(
      { status: code, statusText: status[3] ?? '', headers, rawHeaders },
      {
        pause: () => socket.pause(),
        resume: () => socket.resume(),
        cancel: () => this.cancel(),
      },
    );
    this.resolve();
    return false;
  }

  private body(data: Buffer): void {
    const framing = this.framing;
    if (framing.kind === 'none') {
      if (data.length > 0) this.keepAlive = false;
      return this.complete();
    }
    if (framing.kind === 'close') {
      if (data.length > 0) this.sink!.data(data);
      return;
    }
    if (framing.kind === 'length') {
      const take = Math.min(framing.left, data.length);
      if (take > 0) this.sink!.data(take === data.length ? data : data.subarray(0, take));
      framing.left -= take;
      if (framing.left === 0) {
        if (data.length > take) this.keepAlive = false;
        this.complete();
      }
      return;
    }
    this.chunks(data);
  }

  private chunks(input: Buffer): void {
    let data = input;
    while (!this.done) {
      if (this.chunkLeft === -1 || this.chunkLeft === -3) {
        const eol = data.indexOf(CRLF);
        if (eol < 0) {
          if (data.length > MAX_HEAD_BYTES) throw new Error('Malformed chunked answer');
          if (data.length > 0) this.pending = data;
          return;
        }
        const line = data.toString('latin1', 0, eol);
        data = data.subarray(eol + 2);
        if (this.chunkLeft === -3) {
          // Trailers end at an empty line.
          if (line === '') {
            if (data.length > 0) this.keepAlive = false;
            this.complete();
          }
          continue;
        }
        const size = line.split(';')[0].trim();
        if (!/^[0-9a-fA-F]+$/.test(size)) throw new Error('Malformed chunk size');
        const length = parseInt(size, 16);
        this.chunkLeft = length === 0 ? -3 : length;
        continue;
      }
      if (this.chunkLeft === -2) {
        if (data.length < 2) {
          if (data.length > 0) this.pending = data;
          return;
        }
        if (data[0] !== 0x0d || data[1] !== 0x0a) throw new Error('Malformed chunked answer');
        data = data.subarray(2);
        this.chunkLeft = -1;
        continue;
      }
      if (data.length === 0) return;
      const take = Math.min(this.chunkLeft, data.length);
      this.sink!.data(take === data.length ? data : data.subarray(0, take));
      data = data.subarray(take);
      this.chunkLeft -= take;
      if (this.chunkLeft === 0) this.chunkLeft = -2;
    }
  }

  /** The answer is complete: its body ends, the socket goes back to the pool (or is closed). */
  private complete(): void {
    if (this.done) return;
    this.done = true;
    this.detach();
    if (this.keepAlive && !this.socket.destroyed) {
      this.socket.resume();
      putIdle(this.origin, this.socket, this.idleMs);
    } else this.socket.destroy();
    this.sink?.end();
  }

  /** The connection ended (or closed): the end of a body read to the close, else an error. */
  private closed(): void {
    if (this.done) return;
    if (this.answered && this.framing.kind === 'close') {
      this.keepAlive = false;
      return this.complete();
    }
    const error = Object.assign(new Error(this.answered ? 'aborted' : 'socket hang up'), { code: 'ECONNRESET' });
    this.fail(error);
  }

  private fail(error: Error): void {
    if (this.done) return;
    this.done = true;
    this.detach();
    this.socket.destroy();
    if (this.answered) this.sink?.error(error);
    else this.reject(new TypeError('fetch failed', { cause: error }));
  }

  private abort(): void {
    if (this.done) return;
    this.done = true;
    this.detach();
    this.socket.destroy();
    const reason = abortReason(this.signal!);
    if (this.answered) this.sink?.error(reason as Error);
    else this.reject(reason);
  }

  /** The reader no longer wants the body (a stream cancelled): the connection cannot be reused. */
  private cancel(): void {
    if (this.done) return;
    this.done = true;
    this.detach();
    this.socket.destroy();
  }

  private detach(): void {
    const socket = this.socket;
    socket.off('data', this.onData);
    socket.off('error', this.onError);
    socket.off('end', this.onEnd);
    socket.off('close', this.onEnd);
    this.signal?.removeEventListener('abort', this.onAbort);
  }
}

export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}
