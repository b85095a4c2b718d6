import type { FastifyRequest } from 'fastify';
import { Actor, userAgentOf } from '../auth/actor';

/** Where a request came from: the actor without its principal (for code that runs before authentication). */
export function clientInfo(request: FastifyRequest): Pick<Actor, 'ipAddress' | 'userAgent'> {
  return { ipAddress: request.ip, userAgent: userAgentOf(request.headers['user-agent']) };
}
