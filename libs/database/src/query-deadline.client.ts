import { Client } from 'pg';
import { traceDatabaseClient, tracing } from '@app/telemetry';
import type { PostgresBreaker } from './postgres-breaker';

type Callback = (error: Error | null, ...rest: unknown[]) => void;

/** Destroys the socket: pending queries fail with "Connection terminated", the server rolls back. */
export function dropConnection(client: Client): void {
  (client.connection as unknown as { stream: { destroy(): void } }).stream.destroy();
}

/** An error the server sent (it has a severity) proves the server answers; anything else does not. */
export function unanswered(error: unknown): boolean {
  // Not `instanceof Error`: socket errors may come from another realm (a vm context in tests).
  return typeof error === 'object' && error !== null && !('severity' in error);
}

/** Fails a call at once in whichever style it was made (callback or promise). */
function refuse(args: unknown[], error: Error): unknown {
  const callback = args[args.length - 1];
  if (typeof callback === 'function') {
    process.nextTick(() => (callback as Callback)(error));
    return undefined;
  }
  return Promise.reject(error);
}

/**
 * The pool's pg client for a networked PostgreSQL, wired to the outage breaker.
 *
 * `statement_timeout` is enforced by the server, so it cannot end a wait on a server that froze or
 * a network that drops packets: the query would wait for TCP to give up, minutes later, holding its
 * request and a pool slot. When a query has had no answer `deadlineMs` after it was sent (unset: no
 * deadline), this client drops its connection instead: the query fails with "Connection
 * terminated" (a 503), the pool discards the client, PostgreSQL rolls back whatever that connection
 * had open once it sees the close — and the breaker opens.
 *
 * While the breaker is open, connecting and querying fail at once (a query on a connection that is
 * still open drops it, so a transaction on it can never go on half done). A connection attempt that
 * fails without an answer from the server (refused, reset, timed out) opens the breaker.
 */
export function clientWithQueryDeadline(deadlineMs: number | undefined, breaker?: PostgresBreaker): typeof Client {
  class QueryDeadlineClient extends Client {}
  const query = Client.prototype.query as (...args: unknown[]) => unknown;
  const connect = Client.prototype.connect as (...args: unknown[]) => unknown;

  QueryDeadlineClient.prototype.query = function (this: Client, ...args: unknown[]): unknown {
    if (breaker?.isOpen) {
      dropConnection(this);
      return refuse(args, breaker.unavailable());
    }
    const result = tracing.tracer ? traceDatabaseClient(this, args[0], () => query.apply(this, args)) : query.apply(this, args);
    // TypeORM queries with promises; callbacks and streams (unused here) keep pg's behaviour.
    if (!(result instanceof Promise) || deadlineMs === undefined) return result;
    const sentAtMs = Date.now();
    const timer = setTimeout(() => {
      dropConnection(this);
      breaker?.failed(`no answer to a query within ${deadlineMs} ms`, sentAtMs);
    }, deadlineMs);
    return result.finally(() => clearTimeout(timer));
  } as Client['query'];

  if (!breaker) return QueryDeadlineClient;

  QueryDeadlineClient.prototype.connect = function (this: Client, ...args: unknown[]): unknown {
    if (breaker.isOpen) return refuse(args, breaker.unavailable());
    const sentAtMs = Date.now();
    const untrack = breaker.track({ drop: () => dropConnection(this) });
    this.once('end', untrack);
    const observe = (error: unknown) => {
      if (!error) return;
      untrack();
      if (unanswered(error)) breaker.failed(`cannot connect: ${(error as Error).message}`, sentAtMs);
    };
    const callback = args[args.length - 1];
    if (typeof callback === 'function') {
      return connect.call(this, (error: Error | null) => {
        observe(error);
        (callback as Callback)(error);
      });
    }
    return (connect.call(this) as Promise<void>).catch((error: unknown) => {
      observe(error);
      throw error;
    });
  } as Client['connect'];
  return QueryDeadlineClient;
}
