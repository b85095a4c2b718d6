import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/server';
import { WebSocket } from 'ws';
import { parseJsonInput } from '@app/core';
import { frameParseError, jsonRpcInputRefusal } from '../errors/mcp-errors';

/**
 * An MCP server transport over one WebSocket: one JSON-RPC message per text frame, as the SDK's
 * `WebSocketClientTransport` sends them (the SDKs ship no server side). Frames that arrive before
 * the server has connected are kept and delivered on `start`, so the client's `initialize` is
 * never lost to the time it takes to set the session up. With an `admit` gate (the general rate
 * limit), each message is delivered only once admitted, in the order the frames arrived.
 */
export class WebSocketServerTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;
  sessionId?: string;
  private queued: JSONRPCMessage[] | null = [];
  /** The last admission in flight: the next one waits for it, so messages keep their order. */
  private admitted: Promise<void> = Promise.resolve();

  constructor(
    private readonly socket: WebSocket,
    private readonly admit?: (message: JSONRPCMessage) => Promise<boolean>,
  ) {
    socket.on('message', (data, isBinary) => this.receive(data, isBinary));
    socket.on('close', () => this.onclose?.());
    socket.on('error', (error) => this.onerror?.(error));
  }

  async start(): Promise<void> {
    const queued = this.queued ?? [];
    this.queued = null;
    for (const message of queued) this.onmessage?.(message);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    if (this.socket.readyState !== WebSocket.OPEN) return;
    await new Promise<void>((resolve, reject) => this.socket.send(JSON.stringify(message), (error) => (error ? reject(error) : resolve())));
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.close(1000, 'closed');
  }

  private receive(data: unknown, isBinary: boolean): void {
    // The same input rules as REST bodies and MCP over HTTP: bounded depth, no NUL, lone surrogate or __proto__.
    const parsed = isBinary ? undefined : parseJsonInput(String(data));
    if (parsed && !parsed.ok && parsed.reason !== 'syntax') {
      void this.send(jsonRpcInputRefusal(parsed) as unknown as JSONRPCMessage);
      return;
    }
    const message = parsed?.ok ? (parsed.value as JSONRPCMessage) : undefined;
    if (!message || typeof message !== 'object' || Array.isArray(message) || (message as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
      void this.send(frameParseError());
      return;
    }
    const admit = this.admit;
    if (!admit) return this.deliver(message);
    this.admitted = this.admitted
      .then(async () => {
        if (await admit(message)) this.deliver(message);
      })
      .catch((error: unknown) => this.onerror?.(error instanceof Error ? error : new Error(String(error))));
  }

  private deliver(message: JSONRPCMessage): void {
    if (this.queued) this.queued.push(message);
    else this.onmessage?.(message);
  }
}
