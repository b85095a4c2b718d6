import { PerRequestHTTPServerTransport } from '@modelcontextprotocol/server';
import type { JSONRPCMessage, Server, Transport } from '@modelcontextprotocol/server';

/**
 * A 2026-07-28 exchange's whole JSON answer (200, `application/json`), as the SDK's per-request
 * transport would have answered it with `Response.json(message)`: the same status, header and
 * bytes (`body` is that JSON), without a web Response whose body stream the endpoint would only
 * read back into bytes (sendWebResponse writes it through Fastify).
 */
export class JsonAnswer {
  readonly status = 200;
  constructor(readonly message: JSONRPCMessage) {}

  get body(): string {
    return JSON.stringify(this.message);
  }
}

/** The per-request transport's state its send consults before it settles a whole JSON answer. */
interface PerRequestState {
  _closed: boolean;
  _terminalDelivered: boolean;
  _requestId?: unknown;
  _sse?: unknown;
  _responseMode: string;
  settleResponse(response: unknown): void;
}

/**
 * Once the server is connected to the SDK's per-request HTTP transport, the success result of its
 * one request settles the exchange with a JsonAnswer exactly where the transport would have built
 * `Response.json(message)` (not streaming, not SSE mode: the transport's own conditions), and the
 * transport closes after the protocol layer has finished with the request (it then has no handler
 * left to abort). Everything else (errors and their HTTP status ladder, notifications, SSE) goes
 * through the transport's own send. Other transports, or a transport that no longer has the
 * state this relies on, are left as they are.
 */
export function answerJsonDirectly(server: Server): void {
  const connect = server.connect.bind(server);
  server.connect = async (transport: Transport) => {
    await connect(transport);
    if (!(transport instanceof PerRequestHTTPServerTransport)) return;
    const state = transport as unknown as PerRequestState;
    if (typeof state._terminalDelivered !== 'boolean' || typeof state.settleResponse !== 'function' || !('_responseMode' in state)) return;
    const send = transport.send.bind(transport);
    transport.send = (message, options) => {
      if (
        !isResultFor(message, state._requestId) ||
        state._closed ||
        state._terminalDelivered ||
        state._sse !== undefined ||
        state._responseMode === 'sse'
      ) {
        return send(message, options);
      }
      state._terminalDelivered = true;
      state.settleResponse(new JsonAnswer(message));
      setImmediate(() => void transport.close());
      return Promise.resolve();
    };
  };
}

/**
 * A success response to the exchange's request, as the protocol layer builds it (`{ result, jsonrpc,
 * id }` with a result its codec has validated and encoded): what the SDK's own check would accept.
 */
function isResultFor(message: JSONRPCMessage, requestId: unknown): boolean {
  const result = (message as { result?: unknown }).result;
  return (
    requestId !== undefined &&
    (message as { id?: unknown }).id === requestId &&
    message.jsonrpc === '2.0' &&
    result !== null &&
    typeof result === 'object' &&
    !Array.isArray(result) &&
    !('method' in message) &&
    !('error' in message)
  );
}
