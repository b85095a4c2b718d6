import type { JSONRPCMessage, Transport } from '@modelcontextprotocol/server';
import { TracedServer } from './traced-server';

/** A transport that keeps what is sent and closes when asked (as the SDK's transports do: onclose). */
function transport(): Transport & { sent: JSONRPCMessage[] } {
  const sent: JSONRPCMessage[] = [];
  const self: Transport & { sent: JSONRPCMessage[] } = {
    sent,
    start: async () => undefined,
    send: async (message) => void sent.push(message),
    close: async () => self.onclose?.(),
  };
  return self;
}

describe('TracedServer closing', () => {
  it('closes an idle connection as the base does, and leaves the stack trace limit as it was', async () => {
    const server = new TracedServer({ name: 'spec', version: '1.0.0' }, { capabilities: {} });
    const limit = Error.stackTraceLimit;
    let closed = 0;
    server.onclose = () => closed++;
    await server.connect(transport());

    await server.close();

    expect(closed).toBe(1);
    expect(server.transport).toBeUndefined();
    expect(Error.stackTraceLimit).toBe(limit);
  });

  it('still gives whoever waits a ConnectionClosed error with its stack', async () => {
    const server = new TracedServer({ name: 'spec', version: '1.0.0' }, { capabilities: {} });
    const wire = transport();
    await server.connect(wire);
    const waiting = server.ping();
    await new Promise((resolve) => setImmediate(resolve));
    expect(wire.sent).toHaveLength(1);

    await server.close();

    const error = (await waiting.catch((thrown: unknown) => thrown)) as Error & { code?: string };
    expect(error.code).toBe('CONNECTION_CLOSED');
    expect(error.stack).toMatch(/\n\s+at /);
  });
});
