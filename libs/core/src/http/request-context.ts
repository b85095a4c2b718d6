import { randomFillSync } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * Random bytes for identifiers that are not secrets (request and trace ids, newId's record ids),
 * drawn from a pool refilled 4 KiB at a time: a randomBytes call per request was a visible share
 * of a cached read's CPU. Each call gets bytes no other call got; copy them if they must outlive
 * the next call (the pool is refilled in place).
 */
const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;

export function pooledRandom(size: number): Buffer {
  if (poolOffset + size > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += size;
  return pool.subarray(poolOffset - size, poolOffset);
}

/** Fastify genReqId: a caller's well-formed X-Request-Id is kept, anything else replaced. */
export function requestIdFor(req: IncomingMessage): string {
  const header = req.headers['x-request-id'];
  if (typeof header === 'string' && REQUEST_ID.test(header)) return header;
  return newRequestId();
}

/** A fresh request id, also for answers written before a request exists (client errors). */
export function newRequestId(): string {
  return `req_${pooledRandom(12).toString('base64url')}`;
}

/** The W3C trace id from a valid traceparent, or a new one so every error can be correlated. */
export function traceIdFor(traceparent: string | string[] | undefined): string {
  if (typeof traceparent === 'string') {
    const match = TRACEPARENT.exec(traceparent.trim());
    if (match && !/^0+$/.test(match[1])) return match[1];
  }
  return pooledRandom(16).toString('hex');
}

declare module 'fastify' {
  interface FastifyRequest {
    traceId: string;
  }
}
