import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AppConfig } from '@app/core';

/**
 * Node checks the header and request deadlines only on this interval (30 s by default, which
 * would let a slow client overstay its deadline by that much): a tenth of the header deadline,
 * between 100 ms and 1 s. The check walks the connections that are mid-request, nothing else.
 */
function checkingIntervalMs(headersTimeoutMs: number): number {
  return Math.min(1_000, Math.max(100, Math.floor(headersTimeoutMs / 10)));
}

/** The deadlines as Fastify server options (Fastify passes `http` on to http.createServer). */
export function httpServerOptions(http: AppConfig['http']): {
  keepAliveTimeout: number;
  requestTimeout: number;
  http: { headersTimeout: number; connectionsCheckingInterval: number };
} {
  return {
    keepAliveTimeout: http.keepAliveTimeoutMs,
    requestTimeout: http.requestTimeoutMs,
    http: { headersTimeout: http.headersTimeoutMs, connectionsCheckingInterval: checkingIntervalMs(http.headersTimeoutMs) },
  };
}

const attached = new WeakMap<Server, HttpConnections>();

/**
 * The drain at shutdown: idle connections are closed at once, and every response from then on
 * (including those of requests already in flight) says `Connection: close` and closes its
 * connection, so idle keep-alive clients cannot hold the shutdown up until their timeout.
 * (Node's server.close() closes only the connections idle at that moment, once.)
 */
export class HttpConnections {
  private draining = false;
  private readonly inFlight = new Set<ServerResponse>();
  /** One listener for every response ('close' comes once): no wrapper and closure per request, as `once` makes. */
  private readonly untrack: (this: ServerResponse) => void;

  private constructor(private readonly server: Server) {
    const inFlight = this.inFlight;
    this.untrack = function (this: ServerResponse) {
      inFlight.delete(this);
    };
    // Before Fastify's listener, so the header is set before any handler can answer.
    server.prependListener('request', (_request: IncomingMessage, response: ServerResponse) => this.track(response));
  }

  static attach(server: Server): HttpConnections {
    const connections = new HttpConnections(server);
    attached.set(server, connections);
    return connections;
  }

  static of(server: Server): HttpConnections | undefined {
    return attached.get(server);
  }

  /** Shutdown has begun: close idle connections now and every other one after its response. */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    for (const response of this.inFlight) this.closeAfter(response);
    this.inFlight.clear();
    this.server.closeIdleConnections();
  }

  private track(response: ServerResponse): void {
    if (this.draining) return this.closeAfter(response);
    this.inFlight.add(response);
    response.on('close', this.untrack);
  }

  private closeAfter(response: ServerResponse): void {
    // Node closes the connection after a response that says so; one whose headers are already
    // out (a stream) leaves its connection idle when it ends, and the idle are closed then.
    if (!response.headersSent) response.setHeader('connection', 'close');
    else response.once('finish', () => setImmediate(() => this.server.closeIdleConnections()));
  }
}
