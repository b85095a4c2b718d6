import { context, SpanKind, trace } from '@opentelemetry/api';
import { failSpan } from './spans';
import { tracing } from './tracing';

interface RedisCommandLike {
  name: string;
  promise: Promise<unknown>;
}

interface RedisClientLike {
  sendCommand(command: RedisCommandLike, ...rest: unknown[]): unknown;
  options?: { host?: string; port?: number };
}

/**
 * One CLIENT span per Redis command of an ioredis client sent inside a trace, child of the active span: the command
 * name (`db.operation.name`), never its keys or values. Installs nothing when tracing is off.
 */
export function traceRedisClient(client: RedisClientLike): void {
  const tracer = tracing.tracer;
  if (!tracer) return;
  const send = client.sendCommand.bind(client);
  const host = client.options?.host;
  const port = client.options?.port;
  client.sendCommand = (command: RedisCommandLike, ...rest: unknown[]) => {
    // Only commands of a traced operation: heartbeat PINGs would each start a trace.
    if (!trace.getSpan(context.active())) return send(command, ...rest);
    const operation = command.name.toUpperCase();
    const span = tracer.startSpan(operation, {
      kind: SpanKind.CLIENT,
      attributes: {
        'db.system.name': 'redis',
        'db.operation.name': operation,
        ...(host ? { 'server.address': host } : {}),
        ...(port ? { 'server.port': port } : {}),
      },
    });
    void command.promise.then(
      () => span.end(),
      (error: unknown) => {
        failSpan(span, error);
        span.end();
      },
    );
    return send(command, ...rest);
  };
}
