import type { JSONRPCMessage, Server, Transport } from '@modelcontextprotocol/server';
import type { SessionActivityService } from '@app/sessions';

/**
 * Counts every JSON-RPC message of a server's connection in a session: each message received,
 * each sent, and each error response sent. Wraps the transport once the server has connected
 * (when the protocol layer has installed its handlers), so it sees exactly what goes over the wire.
 */
export function countMessages(server: Server, activity: SessionActivityService, sessionOf: () => string | null): void {
  const connect = server.connect.bind(server);
  server.connect = async (transport: Transport) => {
    await connect(transport);
    const send = transport.send.bind(transport);
    transport.send = (message, options) => {
      const sessionId = sessionOf();
      if (sessionId) activity.count(sessionId, { sent: 1, errors: isErrorResponse(message) ? 1 : 0 });
      return send(message, options);
    };
    const deliver = transport.onmessage;
    transport.onmessage = (message, extra) => {
      const sessionId = sessionOf();
      if (sessionId) activity.count(sessionId, { received: 1 });
      deliver?.(message, extra);
    };
  };
}

function isErrorResponse(message: JSONRPCMessage): boolean {
  return 'error' in message && message.error !== undefined;
}
