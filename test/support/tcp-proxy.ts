import { createConnection, createServer, Server, Socket } from 'node:net';

interface Link {
  client: Socket;
  /** Unset while stalled: the connection was accepted but not passed on yet. */
  upstream: Socket | undefined;
  /** Went silent: every byte either way is dropped from then on, for good. */
  silent?: boolean;
}

/**
 * A TCP proxy the suites can cut and restore, to take a real PostgreSQL away from the app
 * and give it back without touching the machine's server.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly links = new Set<Link>();
  private stalled = false;
  private silent = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(port = 0): Promise<number> {
    this.server = createServer((client) => {
      const link: Link = { client, upstream: undefined };
      this.links.add(link);
      this.track(client);
      client.on('close', () => {
        this.links.delete(link);
        link.upstream?.destroy();
      });
      if (this.silent) this.drop(link);
      else if (this.stalled) client.pause();
      else this.connect(link);
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : port;
    return this.port;
  }

  /**
   * Lets no byte through in either direction and closes nothing, like a database that froze or a
   * network that drops packets: queries wait, new connections are accepted and then hang.
   */
  stall(): void {
    this.stalled = true;
    for (const { client, upstream } of this.links) {
      if (!upstream) continue;
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /** Ends a stall: what was held goes through, and waiting connections are passed on. */
  resume(): void {
    if (!this.stalled) return;
    this.stalled = false;
    for (const link of this.links) {
      if (link.silent) continue;
      if (!link.upstream) this.connect(link);
      else link.client.pipe(link.upstream).pipe(link.client);
    }
  }

  /**
   * Accepts and drops every byte, closing nothing, like a stuck node or a partition: the open
   * connections stay half-open black holes even after `restore` (as after a real partition, only
   * a new connection works again); new connections are accepted and then hear nothing.
   */
  silence(): void {
    this.silent = true;
    for (const link of this.links) this.drop(link);
  }

  /** Silences only the open connection whose client side uses this local port (one of several). */
  silenceConnectionFrom(clientPort: number): void {
    for (const link of this.links) if (link.client.remotePort === clientPort) this.drop(link);
  }

  /** Drops every open connection and refuses new ones, like a database that went away. */
  async cut(): Promise<void> {
    this.stalled = false;
    this.silent = false;
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again on the same port (after `cut`); passes new connections on again (after `silence`). */
  async restore(): Promise<void> {
    this.silent = false;
    if (this.server) return;
    await this.start(this.port);
  }

  private connect(link: Link): void {
    const upstream = createConnection(this.targetPort, this.targetHost);
    link.upstream = upstream;
    this.track(upstream);
    upstream.on('close', () => link.client.destroy());
    link.client.pipe(upstream).pipe(link.client);
  }

  private drop(link: Link): void {
    link.silent = true;
    const { client, upstream } = link;
    if (upstream) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      upstream.resume();
    }
    // Flowing with no consumer: what arrives is read and thrown away.
    client.resume();
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }
}
