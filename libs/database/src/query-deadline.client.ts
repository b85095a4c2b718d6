import { Client } from 'pg';

/**
 * A pg client that stops waiting for a database that went silent. `statement_timeout` is
 * enforced by the server, so it cannot end a wait on a server that froze or a network that drops
 * packets: the query would wait for TCP to give up, minutes later, holding its request and a pool
 * slot. When a query has had no answer `deadlineMs` after it was sent, this client drops its
 * connection instead: the query fails with "Connection terminated" (a 503), the pool discards the
 * client, and PostgreSQL rolls back whatever that connection had open once it sees the close.
 */
export function clientWithQueryDeadline(deadlineMs: number): typeof Client {
  class QueryDeadlineClient extends Client {}
  const query = Client.prototype.query as (...args: unknown[]) => unknown;
  QueryDeadlineClient.prototype.query = function (this: Client, ...args: unknown[]): unknown {
    const result = query.apply(this, args);
    // TypeORM queries with promises; callbacks and streams (unused here) keep pg's behaviour.
    if (!(result instanceof Promise)) return result;
    const timer = setTimeout(() => (this.connection as unknown as { stream: { destroy(): void } }).stream.destroy(), deadlineMs);
    return result.finally(() => clearTimeout(timer));
  } as Client['query'];
  return QueryDeadlineClient;
}
